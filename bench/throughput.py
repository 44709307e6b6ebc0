"""Throughput and latency of the loyalty worker, next to its two ceilings, in one run.

    .venv/bin/python -m bench.throughput                      # Redis broker, 20,000 commands
    .venv/bin/python -m bench.throughput --broker amqp://guest:guest@127.0.0.1:5672//

Phases, all on the same broker, the same bench database and the same worker concurrency:

(a) end to end: 20,000 ``loyalty.adjust_points`` commands are queued while no worker runs, then
    a real ``celery worker -c 2 -P prefork`` drains them; done when ``processed_commands`` has
    them all.
(b) framework ceiling: the same messages to ``loyalty.bench.noop`` (bench/noop.py), a task with the
    same options and result that touches no database.
(c) database ceiling: the SQL one adjustment runs (lock the account, update it, ledger, outbox,
    idempotency record, commit) sent straight through psycopg by as many processes as the worker
    has.
(d) publish-to-commit latency at a steady publish rate of half of (a).

See bench/README.md for how each figure is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql
from psycopg.types.json import Json
from sqlalchemy.engine import make_url

from bench import COMPLETIONS_KEY, COMPLETIONS_URL_ENV, NOOP_TASK
from workers.process import WorkerProcess

if TYPE_CHECKING:
    from multiprocessing.queues import Queue as ProcessQueue
    from multiprocessing.synchronize import Barrier

    from celery import Celery

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"

QUEUE = "loyalty.adjustments"
ADJUST_TASK = "loyalty.adjust_points"
SHOP_ID = "bench-shop"

# Command id prefixes, one per phase that writes to the database.
END_TO_END = "e2e-"
DIRECT_SQL = "sql-"
WARMUP = "warm-"
LATENCY = "lat-"

POLL_INTERVAL = 0.2  # seconds between completion polls (a count of the phase's rows: a few ms)
STALL_SECONDS = 60.0  # no completion for this long while some are missing: give up


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    broker: str
    result_backend: str
    database_url: str
    commands: int
    customers: int
    concurrency: int
    latency_seconds: float
    seed: int
    rounds: int

    @property
    def completions_url(self) -> str:
        """Where the no-op task counts itself: the result backend's Redis when it is one."""
        if self.result_backend.startswith(("redis://", "rediss://")):
            return self.result_backend
        return "redis://127.0.0.1:6379/12"


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--result-backend",
        help="default: the broker's Redis, DB 12 (redis://127.0.0.1:6379/12 for other brokers)",
    )
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/loyalty_bench",
        help="dropped and re-created on every run; its name must contain 'bench'",
    )
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="split (a) and (b) into this many alternating rounds (a b, b a, ...) so that both "
        "see the same machine: a shared VM's speed drifts by tens of percent within minutes",
    )
    args = parser.parse_args(argv)
    if args.commands < 2 * args.rounds or args.customers < 1 or args.concurrency < 1:
        parser.error("need --commands >= 2 * --rounds, --customers >= 1, --concurrency >= 1")
    if "bench" not in (make_url(args.database_url).database or ""):
        parser.error("--database-url must name a database with 'bench' in it: it is dropped")
    return Config(
        broker=args.broker,
        result_backend=args.result_backend or default_result_backend(args.broker),
        database_url=args.database_url,
        commands=args.commands,
        customers=args.customers,
        concurrency=args.concurrency,
        latency_seconds=args.latency_seconds,
        seed=args.seed,
        rounds=max(1, args.rounds),
    )


def default_result_backend(broker: str) -> str:
    if broker.startswith(("redis://", "rediss://")):
        return urlunsplit(urlsplit(broker)._replace(path="/12"))
    return "redis://127.0.0.1:6379/12"


def configure_environment(config: Config) -> None:
    """workers.settings reads these at import: call before anything imports workers.app. The
    worker subprocesses inherit the same environment."""
    os.environ.update(
        LOYALTY_DATABASE_URL=config.database_url,
        LOYALTY_BROKER_URL=config.broker,
        LOYALTY_RESULT_BACKEND=config.result_backend,
    )
    os.environ[COMPLETIONS_URL_ENV] = config.completions_url


def conninfo(database_url: str, dbname: str | None = None) -> dict[str, Any]:
    """psycopg connection arguments for a SQLAlchemy URL."""
    url = make_url(database_url)
    info = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": dbname or url.database,
    }
    return {key: value for key, value in info.items() if value is not None}


def say(message: str) -> None:
    print(message, flush=True)


# --- the bench database ------------------------------------------------------------------------


@contextmanager
def exclusive_run(config: Config) -> Iterator[None]:
    """Hold PostgreSQL advisory locks on the bench database's and the broker's names for the
    whole run: a second run against either would purge this one's queue or drop its database."""
    broker = urlsplit(config.broker)
    names = [
        f"loyalty-bench:database:{make_url(config.database_url).database}",
        f"loyalty-bench:broker:{broker._replace(netloc=f'{broker.hostname}:{broker.port}').geturl()}",
    ]
    with psycopg.connect(**conninfo(config.database_url, "postgres"), autocommit=True) as lock:
        for name in names:
            row = lock.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
            if not row or not row[0]:
                raise SystemExit(f"another benchmark run holds {name!r}: wait for it to end")
        yield


def recreate_database(config: Config) -> None:
    name = make_url(config.database_url).database or ""
    with psycopg.connect(**conninfo(config.database_url, "postgres"), autocommit=True) as server:
        server.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    from workers.db import Database

    Database(config.database_url).upgrade()


def seed_customers(config: Config) -> list[str]:
    """One shop and its customers, through the same store and handler the worker uses."""
    from models import handlers
    from workers.db import Database

    database = Database(config.database_url)
    uow = database.unit_of_work()
    with uow:
        uow.store.create_shop(SHOP_ID, "Benchmark shop")
        uow.commit()
    customers = [f"customer-{number:05d}" for number in range(config.customers)]
    for customer_id in customers:
        command = {
            "command_id": f"upsert-{customer_id}",
            "shop_id": SHOP_ID,
            "customer_id": customer_id,
            "email": f"{customer_id}@bench.example.com",
        }
        result = handlers.upsert_customer(uow, command)
        if result["status"] != "applied":
            raise RuntimeError(f"could not create {customer_id}: {result}")
    database.engine.dispose()
    return customers


def adjustment_commands(
    prefix: str, count: int, customers: Sequence[str], rng: random.Random
) -> list[dict[str, Any]]:
    """Mostly credits, some debits (a debit past the balance is floored, as by default)."""
    commands = []
    for number in range(count):
        delta = rng.randint(1, 500) if rng.random() < 0.8 else -rng.randint(1, 400)
        commands.append(
            {
                "command_id": f"{prefix}{number:07d}",
                "shop_id": SHOP_ID,
                "customer_id": rng.choice(customers),
                "adjustment": delta,
                "note": "benchmark adjustment",
                "source": "bench",
            }
        )
    return commands


class BenchDatabase:
    """The client's own reads of the bench database: completion counts, commit times, checks."""

    def __init__(self, config: Config) -> None:
        self.connection = psycopg.connect(**conninfo(config.database_url), autocommit=True)

    def close(self) -> None:
        self.connection.close()

    def committed(self, prefix: str) -> int:
        row = self.connection.execute(
            "SELECT count(*) FROM processed_commands WHERE shop_id = %s AND command_id LIKE %s",
            (SHOP_ID, prefix + "%"),
        ).fetchone()
        return int(row[0]) if row else 0

    def ledger_high_water(self) -> int:
        """The newest ledger id: an index lookup, cheap enough to poll while the worker drains
        (a count over processed_commands scans every bench row and would slow (a) down)."""
        row = self.connection.execute("SELECT coalesce(max(id), 0) FROM ledger_entries").fetchone()
        return int(row[0]) if row else 0

    def commit_times(self, prefix: str) -> dict[str, float]:
        """command_id -> processed_commands.created_at (epoch seconds)."""
        rows = self.connection.execute(
            "SELECT command_id, extract(epoch FROM created_at)::float8 FROM processed_commands"
            " WHERE shop_id = %s AND command_id LIKE %s",
            (SHOP_ID, prefix + "%"),
        ).fetchall()
        return dict(rows)

    def check_ledger(self, expected_rows: int) -> LedgerCheck:
        row = self.connection.execute(
            """
            SELECT
              (SELECT count(*) FROM ledger_entries),
              (SELECT coalesce(sum(applied), 0) FROM ledger_entries),
              (SELECT coalesce(sum(balance), 0) FROM accounts),
              (SELECT coalesce(sum(revision), 0) FROM accounts),
              (SELECT count(*) FROM accounts a
                 LEFT JOIN (SELECT account_id, sum(applied) AS total
                              FROM ledger_entries GROUP BY account_id) l ON l.account_id = a.id
                WHERE a.balance <> coalesce(l.total, 0)),
              (SELECT count(*) FROM processed_commands
                WHERE command_type = 'adjust_points' AND status <> 'applied')
                + (SELECT count(*) FROM rejected_messages)
            """
        ).fetchone()
        assert row is not None
        return LedgerCheck(expected_rows, *(int(value) for value in row))


@dataclass(frozen=True)
class LedgerCheck:
    expected_rows: int
    ledger_rows: int
    ledger_sum: int
    balance_sum: int
    revision_sum: int
    accounts_off: int
    rejected: int

    @property
    def ok(self) -> bool:
        return (
            self.ledger_rows == self.expected_rows
            and self.ledger_sum == self.balance_sum
            and self.revision_sum == self.ledger_rows
            and self.accounts_off == 0
            and self.rejected == 0
        )

    def describe(self) -> str:
        return (
            f"ledger rows {self.ledger_rows} (expected {self.expected_rows}), "
            f"sum of ledger deltas {self.ledger_sum} vs sum of balances {self.balance_sum}, "
            f"accounts whose ledger != balance: {self.accounts_off}, "
            f"sum of revisions {self.revision_sum}, rejected {self.rejected}"
            f" -> {'OK' if self.ok else 'FAILED'}"
        )


# --- the broker --------------------------------------------------------------------------------


def reset_queue(app: Celery) -> None:
    """Declare the queue as the worker would (quorum on RabbitMQ) and empty it."""
    with app.connection_for_write() as connection:
        app.amqp.queues[QUEUE](connection.default_channel).declare()
    purged = app.control.purge()
    if purged:
        say(f"    purged {purged} stale message(s)")


def queue_state(app: Celery) -> tuple[int, int]:
    """(messages ready, consumers) of the adjustments queue; Redis always reports 0 consumers."""
    with app.connection_for_write() as connection:
        bound = app.amqp.queues[QUEUE](connection.default_channel)
        declared: Any = bound.queue_declare(passive=True)
        _, messages, consumers = declared
    return int(messages), int(consumers)


def publish(app: Celery, task_name: str, commands: Sequence[dict[str, Any]]) -> list[str]:
    """Send every command as fast as one producer connection goes; returns the task ids."""
    with app.producer_or_acquire() as producer:
        return [
            app.send_task(task_name, args=[command], queue=QUEUE, producer=producer).id
            for command in commands
        ]


def prefill(app: Celery, task_name: str, commands: Sequence[dict[str, Any]]) -> list[str]:
    """Queue every command while no worker runs."""
    started = time.perf_counter()
    task_ids = publish(app, task_name, commands)
    elapsed = time.perf_counter() - started
    messages, consumers = queue_state(app)
    say(
        f"    queued {len(commands)} messages in {elapsed:.1f} s "
        f"({len(commands) / elapsed:.0f}/s); queue holds {messages}, consumers {consumers}"
    )
    if consumers or messages != len(commands):
        raise RuntimeError(
            f"another consumer is on {QUEUE} ({consumers} consumers, {messages} messages): "
            "stop it or use another broker/vhost/DB"
        )
    return task_ids


def forget_results(app: Celery, task_ids: Sequence[str]) -> None:
    """Drop the phase's results from a Redis result backend (they would stay for a day)."""
    backend: Any = app.backend
    client = getattr(backend, "client", None)
    if client is None or not hasattr(backend, "get_key_for_task"):
        return
    for start in range(0, len(task_ids), 1000):
        client.delete(
            *(backend.get_key_for_task(task_id) for task_id in task_ids[start : start + 1000])
        )


# --- the worker --------------------------------------------------------------------------------


class Worker(WorkerProcess):
    """The worker under test, with its log in bench/results/."""

    def __init__(self, config: Config, name: str, imports: Sequence[str] = ()) -> None:
        super().__init__(
            f"bench-{name}",
            RESULTS_DIR / f"worker-{name}.log",
            queues=QUEUE,
            concurrency=config.concurrency,
            imports=imports,
            cwd=ROOT,
        )

    def cpu(self) -> float:
        return tree_cpu(self.pid) if self.process is not None else math.nan


def wait_for(
    done: Callable[[], int], target: int, worker: Worker, label: str, timeout: float
) -> float:
    """Poll until ``done() >= target``; returns the perf_counter() of the poll that saw it."""
    deadline = time.perf_counter() + timeout
    next_report = time.perf_counter() + 10
    last_count, last_change = -1, time.perf_counter()
    while True:
        count = done()
        now = time.perf_counter()
        if count >= target:
            return now
        worker.check_alive()
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change > STALL_SECONDS:
            raise RuntimeError(
                f"{label}: stuck at {count}/{target} for {STALL_SECONDS:.0f} s: did another "
                "process purge or consume the queue (another run on the same broker)?"
            )
        if now > deadline:
            raise TimeoutError(f"{label}: {count}/{target} done after {timeout:.0f}s")
        if now >= next_report:
            say(f"    {label}: {count}/{target}")
            next_report = now + 10
        time.sleep(POLL_INTERVAL)


def wait_for_commits(
    db: BenchDatabase,
    base: int,
    prefix: str,
    count: int,
    worker: Worker,
    label: str,
    timeout: float,
) -> float:
    """Poll the ledger's newest id (every bench command is applied: one ledger row each), then
    confirm with the exact count once: ids are handed out before their transaction commits."""
    finished = wait_for(lambda: db.ledger_high_water() - base, count, worker, label, timeout)
    while db.committed(prefix) < count:
        time.sleep(POLL_INTERVAL / 4)
        finished = time.perf_counter()
    return finished


def drain_timeout(count: int) -> float:
    return max(300.0, count / 20)


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    label: str
    count: int
    first: float
    """Epoch seconds of the first completion (commit or no-op return)."""
    last: float
    wall_seconds: float
    """From the worker's first ping reply (c: the start barrier) to the poll that saw all done."""
    done_at_start: int
    """Completions already there when the wall clock started (the worker drains before it
    answers its first ping)."""
    processes: int
    own_cpu_seconds: float
    """CPU of the worker and its pool ((c): the psycopg clients) during the wall window."""
    host_cpu_seconds: float
    """CPU the whole host spent busy during the wall window (PostgreSQL, Redis, this client...)."""
    segments: int = 1
    """Separately drained rounds added together: their spans add up, their gaps do not count."""

    @property
    def span(self) -> float:
        return self.last - self.first

    @property
    def rate(self) -> float:
        """(count - 1) intervals between the first and the last completion, per segment."""
        return (self.count - self.segments) / self.span if self.span > 0 else math.nan

    @property
    def wall_rate(self) -> float:
        counted = self.count - self.done_at_start
        return counted / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def ms_per_command_per_process(self) -> float:
        return 1000 * self.processes / self.rate

    @property
    def own_cpu_ms(self) -> float:
        return self._per_counted_command(self.own_cpu_seconds)

    @property
    def host_cpu_ms(self) -> float:
        return self._per_counted_command(self.host_cpu_seconds)

    def _per_counted_command(self, seconds: float) -> float:
        counted = self.count - self.done_at_start
        return 1000 * seconds / counted if counted else math.nan

    @property
    def host_busy(self) -> float:
        """Share of all the host's CPUs busy during the wall window."""
        return self.host_cpu_seconds / (self.wall_seconds * (os.cpu_count() or 1))


def combine(parts: Sequence[Throughput]) -> Throughput:
    """Rounds of one phase as one measurement: counts, spans, wall time and CPU add up."""
    return Throughput(
        parts[0].label,
        sum(part.count for part in parts),
        0.0,
        sum(part.span for part in parts),
        sum(part.wall_seconds for part in parts),
        sum(part.done_at_start for part in parts),
        parts[0].processes,
        sum(part.own_cpu_seconds for part in parts),
        sum(part.host_cpu_seconds for part in parts),
        sum(part.segments for part in parts),
    )


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (Linux /proc; NaN elsewhere)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        proc = Path(f"/proc/{current}")
        try:
            # utime, stime, cutime, cstime: the 14th to 17th fields, after "pid (comm)".
            total += sum(
                int(value)
                for value in proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[11:15]
            )
            for task in proc.joinpath("task").iterdir():
                pending += [int(child) for child in task.joinpath("children").read_text().split()]
        except (OSError, ValueError):
            if current == pid:
                return math.nan
            # a child that exited meanwhile: its time is in its parent's cutime once reaped
    return total / os.sysconf("SC_CLK_TCK")


def host_cpu() -> float:
    """CPU seconds the host has spent busy since boot (all CPUs; NaN off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Latency:
    target_rate: float
    publish_rate: float
    seconds: float
    warmup: int
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    slowest_published: tuple[float, float]
    """When (seconds into the steady publishing) the slowest 1 % were published: a narrow
    window means one stall, a wide one a spread-out tail."""
    series: list[tuple[float, float]]
    """(seconds into the publishing, latency ms) per command, in publish order."""


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- (a) end to end ----------------------------------------------------------------------------


def run_end_to_end(
    app: Celery,
    config: Config,
    db: BenchDatabase,
    commands: Sequence[dict[str, Any]],
    prefix: str = END_TO_END,
) -> Throughput:
    say(f"(a) end to end: {len(commands)} x {ADJUST_TASK}")
    reset_queue(app)
    task_ids = prefill(app, ADJUST_TASK, commands)
    base = db.ledger_high_water()
    with Worker(config, "adjust") as worker:
        ready_after = worker.start().wait_ready(app)
        clock, host, own = time.perf_counter(), host_cpu(), worker.cpu()
        done_at_start = db.committed(prefix)
        say(f"    worker ready after {ready_after:.1f} s, {done_at_start} already committed")
        finished = wait_for_commits(
            db, base, prefix, len(commands), worker, "(a) committed", drain_timeout(len(commands))
        )
        host, own = host_cpu() - host, worker.cpu() - own
    forget_results(app, task_ids)
    times = db.commit_times(prefix).values()
    return Throughput(
        "(a) adjust_points, end to end",
        len(commands),
        min(times),
        max(times),
        finished - clock,
        done_at_start,
        config.concurrency,
        own,
        host,
    )


# --- (b) framework ceiling ---------------------------------------------------------------------


def run_noop(app: Celery, config: Config, commands: Sequence[dict[str, Any]]) -> Throughput:
    say(f"(b) framework ceiling: {len(commands)} x {NOOP_TASK}")
    completions = redis.Redis.from_url(config.completions_url)
    completions.delete(COMPLETIONS_KEY)
    reset_queue(app)
    task_ids = prefill(app, NOOP_TASK, commands)
    try:
        with Worker(config, "noop", imports=["bench.noop"]) as worker:
            ready_after = worker.start().wait_ready(app)
            clock, host, own = time.perf_counter(), host_cpu(), worker.cpu()
            done_at_start = cast(int, completions.llen(COMPLETIONS_KEY))
            say(f"    worker ready after {ready_after:.1f} s, {done_at_start} already done")
            finished = wait_for(
                lambda: cast(int, completions.llen(COMPLETIONS_KEY)),
                len(commands),
                worker,
                "(b) done",
                drain_timeout(len(commands)),
            )
            host, own = host_cpu() - host, worker.cpu() - own
        times = [
            float(value) for value in cast(list[bytes], completions.lrange(COMPLETIONS_KEY, 0, -1))
        ]
    finally:
        completions.delete(COMPLETIONS_KEY)
        completions.close()
    forget_results(app, task_ids)
    return Throughput(
        "(b) no-op task: Celery ceiling",
        len(commands),
        min(times),
        max(times),
        finished - clock,
        done_at_start,
        config.concurrency,
        own,
        host,
    )


# --- (c) database ceiling ----------------------------------------------------------------------

# The statements of models/store.py as SQLAlchemy compiles them for psycopg, in the order the
# handler runs them (the casts included, so the server plans the same statements).
LOCK_ACCOUNT = """
SELECT accounts.id, accounts.balance, accounts.lifetime, accounts.earned, accounts.redeemed,
       accounts.adjusted, accounts.revision, accounts.email, accounts.phone, accounts.first_name,
       accounts.last_name, accounts.excluded, accounts.last_activity_at,
       tiers.name AS tier_name, tiers.threshold AS tier_threshold,
       processed_commands.payload_hash AS stored_hash, processed_commands.result AS stored_result,
       EXISTS (SELECT shop_tiers.id FROM tiers AS shop_tiers
               WHERE shop_tiers.shop_id = accounts.shop_id) AS shop_has_tiers
FROM accounts
  LEFT OUTER JOIN tiers ON tiers.id = accounts.tier_id
  LEFT OUTER JOIN processed_commands ON processed_commands.shop_id = accounts.shop_id
    AND processed_commands.command_id = %(command_id)s::VARCHAR
WHERE accounts.shop_id = %(shop_id)s::VARCHAR AND accounts.customer_id = %(customer_id)s::VARCHAR
FOR UPDATE OF accounts
"""
UPDATE_POINTS = """
UPDATE accounts SET balance=%(balance)s::BIGINT, lifetime=%(lifetime)s::BIGINT,
  adjusted=%(adjusted)s::BIGINT, revision=%(revision)s::BIGINT,
  last_activity_at=%(now)s::TIMESTAMP WITH TIME ZONE, updated_at=%(now)s::TIMESTAMP WITH TIME ZONE
WHERE accounts.id = %(account_id)s::BIGINT
"""
INSERT_LEDGER = """
INSERT INTO ledger_entries (transaction_id, shop_id, account_id, command_id, requested, applied,
  balance_before, balance_after, lifetime_before, lifetime_after, note, source, actor, created_at)
VALUES (%(transaction_id)s::UUID, %(shop_id)s::VARCHAR, %(account_id)s::BIGINT,
  %(command_id)s::VARCHAR, %(requested)s::BIGINT, %(applied)s::BIGINT, %(balance_before)s::BIGINT,
  %(balance_after)s::BIGINT, %(lifetime_before)s::BIGINT, %(lifetime_after)s::BIGINT,
  %(note)s::VARCHAR, %(source)s::VARCHAR, %(actor)s::VARCHAR,
  %(created_at)s::TIMESTAMP WITH TIME ZONE)
"""
INSERT_OUTBOX = """
INSERT INTO outbox (task_name, shop_id, account_id, transaction_id, created_at)
VALUES (%(task_name)s::VARCHAR, %(shop_id)s::VARCHAR, %(account_id)s::BIGINT,
  %(transaction_id)s::UUID, %(created_at)s::TIMESTAMP WITH TIME ZONE)
"""
INSERT_PROCESSED = """
INSERT INTO processed_commands (shop_id, command_id, command_type, payload_hash, status, result,
  created_at)
VALUES (%(shop_id)s::VARCHAR, %(command_id)s::VARCHAR, %(command_type)s::VARCHAR,
  %(payload_hash)s::VARCHAR, %(status)s::VARCHAR, %(result)s::JSON,
  %(created_at)s::TIMESTAMP WITH TIME ZONE)
"""


def apply_directly(connection: psycopg.Connection[Any], command: dict[str, Any]) -> None:
    """One adjustment, one transaction (psycopg opens it with the first statement), the same
    statements and rows as the handler, with only the arithmetic in Python."""
    now = datetime.now(UTC)
    key = {
        "shop_id": command["shop_id"],
        "customer_id": command["customer_id"],
        "command_id": command["command_id"],
    }
    row = connection.execute(LOCK_ACCOUNT, key).fetchone()
    if row is None or row[15] is not None:
        raise RuntimeError(f"unexpected account state for {key}")
    account_id, balance, lifetime, earned, redeemed, adjusted, revision, email = row[:8]
    delta = command["adjustment"]
    applied = max(balance + delta, 0) - balance
    after = {
        "balance": balance + applied,
        "lifetime": max(lifetime + applied, 0),
        "adjusted": adjusted + applied,
        "revision": revision + 1,
    }
    transaction_id = uuid.uuid4()
    connection.execute(UPDATE_POINTS, {**after, "now": now, "account_id": account_id})
    connection.execute(
        INSERT_LEDGER,
        {
            "transaction_id": transaction_id,
            "shop_id": command["shop_id"],
            "account_id": account_id,
            "command_id": command["command_id"],
            "requested": delta,
            "applied": applied,
            "balance_before": balance,
            "balance_after": after["balance"],
            "lifetime_before": lifetime,
            "lifetime_after": after["lifetime"],
            "note": command.get("note"),
            "source": command.get("source"),
            "actor": command.get("actor"),
            "created_at": now,
        },
    )
    side_effects = []
    if row[17] and after["lifetime"] != lifetime:  # the shop has tiers
        side_effects.append("loyalty.recalculate_tier")
    if applied > 0 and email:
        side_effects.append("loyalty.send_points_earned_email")
    if side_effects:
        with connection.cursor() as cursor:
            cursor.executemany(
                INSERT_OUTBOX,
                [
                    {
                        "task_name": task_name,
                        "shop_id": command["shop_id"],
                        "account_id": account_id,
                        "transaction_id": transaction_id,
                        "created_at": now,
                    }
                    for task_name in side_effects
                ],
            )
    result = direct_result(command, transaction_id, applied, balance, after, earned, redeemed, now)
    connection.execute(
        INSERT_PROCESSED,
        {
            **key,
            "command_type": "adjust_points",
            "payload_hash": hashlib.sha256(
                json.dumps(command, sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest(),
            "status": "applied",
            "result": Json(result),
            "created_at": now,
        },
    )
    connection.commit()


def direct_result(
    command: dict[str, Any],
    transaction_id: uuid.UUID,
    applied: int,
    before: int,
    after: dict[str, int],
    earned: int,
    redeemed: int,
    now: datetime,
) -> dict[str, Any]:
    """The stored result, in the shape (and so the size) of models/results.applied()."""
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "status": "applied",
        "command_id": command["command_id"],
        "shop_id": command["shop_id"],
        "transaction_id": str(transaction_id),
        "data": {
            "type": "points_adjustment",
            "id": str(transaction_id),
            "attributes": {
                "customer_id": command["customer_id"],
                "adjustment": command["adjustment"],
                "applied_adjustment": applied,
                "points_before": before,
                "points_after": after["balance"],
                "current_points": after["balance"],
                "note": command.get("note"),
            },
        },
        "account": {
            "customer_id": command["customer_id"],
            "points": {
                "balance": after["balance"],
                "earned": earned,
                "redeemed": redeemed,
                "adjusted": after["adjusted"],
            },
            "lifetime_points": after["lifetime"],
            "tier": None,
            "revision": after["revision"],
            "last_activity_at": stamp,
        },
    }


def sql_client(
    info: dict[str, Any],
    commands: list[dict[str, Any]],
    start: Barrier,
    results: ProcessQueue[tuple[float, str | None]],
) -> None:
    """One client process of phase (c): connect, wait for the others, apply its share; reports
    the CPU seconds it spent doing so, or what went wrong."""
    try:
        with psycopg.connect(**info) as connection:
            connection.execute("SELECT 1")
            connection.commit()
            start.wait(timeout=120)
            cpu = time.process_time()
            for command in commands:
                apply_directly(connection, command)
            cpu = time.process_time() - cpu
        results.put((cpu, None))
    except Exception as exc:
        start.abort()
        results.put((0.0, repr(exc)))


def run_database_ceiling(
    config: Config, db: BenchDatabase, commands: list[dict[str, Any]]
) -> Throughput:
    processes = config.concurrency
    say(f"(c) database ceiling: {len(commands)} transactions from {processes} psycopg processes")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results: ProcessQueue[tuple[float, str | None]] = context.Queue()
    clients = [
        context.Process(
            target=sql_client,
            args=(conninfo(config.database_url), commands[index::processes], start, results),
        )
        for index in range(processes)
    ]
    for client in clients:
        client.start()
    try:
        start.wait(timeout=120)
        clock, host = time.perf_counter(), host_cpu()
        outcomes = [results.get(timeout=drain_timeout(len(commands))) for _ in clients]
        finished, host = time.perf_counter(), host_cpu() - host
    finally:
        for client in clients:
            client.join(timeout=30)
            if client.is_alive():
                client.kill()
                client.join()
    own = sum(cpu for cpu, _ in outcomes)
    errors = [error for _, error in outcomes if error]
    if errors:
        raise RuntimeError(f"(c) client failed: {errors}")
    times = db.commit_times(DIRECT_SQL).values()
    if len(times) != len(commands):
        raise RuntimeError(f"(c) committed {len(times)} of {len(commands)}")
    return Throughput(
        f"(c) psycopg x{processes}: database ceiling",
        len(commands),
        min(times),
        max(times),
        finished - clock,
        0,
        processes,
        own,
        host,
    )


# --- (d) latency -------------------------------------------------------------------------------


def run_latency(
    app: Celery,
    config: Config,
    db: BenchDatabase,
    warmup: Sequence[dict[str, Any]],
    commands: Sequence[dict[str, Any]],
    rate: float,
) -> Latency:
    """A fresh worker first applies ``warmup`` (each child opens its connection and prepares its
    statements: ~100 ms that would otherwise be the p99), then ``commands`` arrive at ``rate``."""
    seconds = len(commands) / rate
    say(
        f"(d) latency: {len(commands)} commands at {rate:.0f}/s for {seconds:.0f} s, "
        f"after {len(warmup)} warm-up commands"
    )
    reset_queue(app)
    published: dict[str, float] = {}
    with Worker(config, "latency") as worker:
        worker.start().wait_ready(app)
        task_ids = publish(app, ADJUST_TASK, warmup)
        wait_for(lambda: db.committed(WARMUP), len(warmup), worker, "(d) warm-up", 120)
        with app.producer_or_acquire() as producer:
            begin = time.perf_counter()
            for number, command in enumerate(commands):
                delay = begin + number / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                published[command["command_id"]] = time.time()
                result = app.send_task(ADJUST_TASK, args=[command], queue=QUEUE, producer=producer)
                task_ids.append(result.id)
            publishing = time.perf_counter() - begin
        wait_for(lambda: db.committed(LATENCY), len(commands), worker, "(d) committed", 300)
    forget_results(app, task_ids)
    committed = db.commit_times(LATENCY)
    first_sent = min(published.values())
    series = [
        (sent - first_sent, 1000 * (committed[key] - sent)) for key, sent in published.items()
    ]
    latencies = sorted(latency for _, latency in series)
    p99 = percentile(latencies, 0.99)
    slowest = [offset for offset, latency in series if latency >= p99]
    return Latency(
        target_rate=rate,
        publish_rate=(len(commands) - 1) / publishing if publishing > 0 else math.nan,
        seconds=publishing,
        warmup=len(warmup),
        count=len(latencies),
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=p99,
        max_ms=latencies[-1],
        mean_ms=sum(latencies) / len(latencies),
        slowest_published=(min(slowest), max(slowest)),
        series=series,
    )


# --- report ------------------------------------------------------------------------------------


def header(config: Config) -> list[str]:
    return [
        "Loyalty worker throughput benchmark",
        f"  broker          {config.broker}",
        f"  result backend  {config.result_backend}",
        f"  database        {config.database_url}",
        f"  commands        {config.commands} over {config.customers} customers of one shop",
        f"  worker          celery -A workers.app worker -Q {QUEUE} -c {config.concurrency} "
        "-P prefork --without-gossip --without-mingle --without-heartbeat -l warning "
        "(+ -I bench.noop for b)",
        f"  host            {os.cpu_count()} CPUs, load average {load()} at start",
        f"  started         {datetime.now(UTC).isoformat(timespec='seconds')}",
    ]


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(
    config: Config,
    phases: Sequence[Throughput],
    rounds: Sequence[tuple[Throughput, Throughput]],
    latency: Latency,
    checks: Sequence[tuple[str, LedgerCheck]],
) -> list[str]:
    end_to_end, noop, database = phases
    lines = [
        "",
        f"{'throughput':<36}{'done':>7}{'span s':>9}{'rate/s':>9}{'ms/cmd/proc':>13}"
        f"{'wall s':>9}{'wall rate/s':>13}",
    ]
    for phase in phases:
        lines.append(
            f"{phase.label:<36}{phase.count:>7}{phase.span:>9.2f}{phase.rate:>9.1f}"
            f"{phase.ms_per_command_per_process:>13.2f}{phase.wall_seconds:>9.2f}"
            f"{phase.wall_rate:>13.1f}"
        )
    lines += ["", f"{'CPU per command':<36}{'own ms':>9}{'host ms':>9}{'host busy':>11}"]
    for phase in phases:
        lines.append(
            f"{phase.label:<36}{phase.own_cpu_ms:>9.2f}{phase.host_cpu_ms:>9.2f}"
            f"{phase.host_busy:>11.0%}"
        )
    a_b = end_to_end.ms_per_command_per_process - noop.ms_per_command_per_process
    a_c = end_to_end.ms_per_command_per_process - database.ms_per_command_per_process
    lines += [
        "",
        f"a/b = {end_to_end.rate / noop.rate:.3f}   the real task's rate as a share of Celery's "
        f"no-op rate on this broker ({end_to_end.rate:.0f} vs {noop.rate:.0f}/s)",
        f"a/c = {end_to_end.rate / database.rate:.3f}   the real task's rate as a share of the "
        f"same SQL sent straight ({end_to_end.rate:.0f} vs {database.rate:.0f}/s)",
        f"a/b by round ({len(rounds)} rounds of ~{end_to_end.count // len(rounds)}, "
        "order a b, b a, ...): "
        + ", ".join(
            f"{adjusted.rate / noop.rate:.2f} ({adjusted.rate:.0f}/{noop.rate:.0f})"
            for adjusted, noop in rounds
        ),
        f"per command and process, a takes {a_b:.2f} ms more than b (the handler: validation,",
        f"SQLAlchemy, its SQL) and {a_c:.2f} ms more than c (Celery, broker, results, validation,",
        "SQLAlchemy)",
        "",
        f"(d) publish-to-commit latency at a steady {latency.target_rate:.0f}/s "
        f"(half of a; achieved {latency.publish_rate:.0f}/s), {latency.count} commands "
        f"after {latency.warmup} warm-up ones:",
        f"    p50 {latency.p50_ms:.1f} ms   p90 {latency.p90_ms:.1f} ms   "
        f"p99 {latency.p99_ms:.1f} ms   max {latency.max_ms:.1f} ms   "
        f"mean {latency.mean_ms:.1f} ms",
        f"    the slowest 1 % were published {latency.slowest_published[0]:.1f} to "
        f"{latency.slowest_published[1]:.1f} s into the {latency.seconds:.1f} s "
        "(a narrow window points at one stall)",
        "",
        "checks:",
        *(f"    after {when}: {check.describe()}" for when, check in checks),
        "",
        "how to read it:",
        "    span = first to last completion; rate = (done - 1) / span, each summed over the",
        "    rounds (a and b alternate so both see the same machine). Completion is",
        "    processed_commands.created_at for (a) and (c) (set just before the transaction's",
        "    writes, so commit is < 1 ms later) and the no-op's time.time() for (b), pushed to",
        "    a Redis list (RPUSH: one round trip, ~0.1 ms per task, counted in b's cost).",
        "    wall = from the worker's first ping reply ((c): the clients' start barrier) to the",
        f"    poll (every {POLL_INTERVAL} s) that saw all done; the worker starts draining before",
        "    it answers the ping, so wall rate counts only what was done after that reply.",
        "    ms/cmd/proc = processes * 1000 / rate: the time one process spends per command.",
        "    own ms = CPU of the worker and its pool (/proc/PID/stat; (c): the psycopg clients'",
        "    process_time()) and host ms = busy CPU of the whole host (/proc/stat), both over",
        "    the wall window / commands done in it. The difference is PostgreSQL, the broker,",
        "    the result backend, this client's polling and anything else running.",
        "    (d): publish time = time.time() just before send_task, commit time =",
        "    processed_commands.created_at; the worker was idle and ready before publishing.",
        f"    load average at the end {load()} (includes the benchmark's own processes; any",
        "    other work on the host shows in host ms and skews every phase).",
    ]
    return lines


def save(config: Config, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    scheme = urlsplit(config.broker).scheme or "broker"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"throughput-{scheme}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


# --- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    configure_environment(config)
    from workers.app import app  # only now: settings are read at import

    intro = header(config)
    say("\n".join(intro))

    with exclusive_run(config):
        phases, rounds, latency, checks = run_phases(app, config)
    end_to_end, noop, database = phases

    lines = report(config, phases, rounds, latency, checks)
    say("\n".join(lines))
    path = save(
        config,
        {
            "config": asdict(config),
            "phases": [
                {**asdict(phase), "span": phase.span, "rate": phase.rate} for phase in phases
            ],
            "ratios": {
                "a/b": end_to_end.rate / noop.rate,
                "a/c": end_to_end.rate / database.rate,
                "a/b by round": [adjusted.rate / noop.rate for adjusted, noop in rounds],
            },
            "latency": asdict(latency),
            "checks": {when: {**asdict(check), "ok": check.ok} for when, check in checks},
            "report": intro + lines,
        },
    )
    say(f"\nsaved {path.relative_to(ROOT)}")
    return 0 if all(check.ok for _, check in checks) else 1


def run_phases(
    app: Celery, config: Config
) -> tuple[
    list[Throughput],
    list[tuple[Throughput, Throughput]],
    Latency,
    list[tuple[str, LedgerCheck]],
]:
    rng = random.Random(config.seed)
    say(f"setup: re-creating {make_url(config.database_url).database}, seeding customers")
    recreate_database(config)
    customers = seed_customers(config)
    direct_commands = adjustment_commands(DIRECT_SQL, config.commands, customers, rng)

    db = BenchDatabase(config)
    try:
        rounds: list[tuple[Throughput, Throughput]] = []
        for number, size in enumerate(round_sizes(config), start=1):
            say(f"round {number} of {config.rounds}")
            prefix = f"{END_TO_END}r{number}-"
            commands = adjustment_commands(prefix, size, customers, rng)
            if number % 2:
                adjusted = run_end_to_end(app, config, db, commands, prefix)
                noop = run_noop(app, config, commands)
            else:
                noop = run_noop(app, config, commands)
                adjusted = run_end_to_end(app, config, db, commands, prefix)
            rounds.append((adjusted, noop))
        end_to_end = combine([adjusted for adjusted, _ in rounds])
        noop = combine([noop for _, noop in rounds])
        checks = [("(a)", db.check_ledger(config.commands))]
        database = run_database_ceiling(config, db, direct_commands)
        checks.append(("(c)", db.check_ledger(2 * config.commands)))
        rate = end_to_end.rate / 2
        count = max(2, round(rate * config.latency_seconds))
        warmup = adjustment_commands(WARMUP, 20 * config.concurrency, customers, rng)
        steady = adjustment_commands(LATENCY, count, customers, rng)
        latency = run_latency(app, config, db, warmup, steady, rate)
        checks.append(("(d)", db.check_ledger(2 * config.commands + len(warmup) + count)))
    finally:
        db.close()
    return [end_to_end, noop, database], rounds, latency, checks


def round_sizes(config: Config) -> list[int]:
    base, extra = divmod(config.commands, config.rounds)
    return [base + (1 if number < extra else 0) for number in range(config.rounds)]


if __name__ == "__main__":
    sys.exit(main())
