"""Worker memory across a long run: the RSS of each worker process while it applies a million
live commands.

    .venv/bin/python -m bench.soak                                   # 1,000,000 adjustments
    .venv/bin/python -m bench.soak --commands 50000 --sample-seconds 2

A real ``celery worker -Q loyalty.adjustments -c 2`` applies ``loyalty.adjust_points`` commands
over 1,000 customers while this script keeps a backlog of them queued (published in batches, one
Redis pipeline each). Every ``--sample-seconds`` it reads the resident set of the worker's main
process and of each pool process from /proc. The baseline is the first sample after 10 % of the
commands (imports, connections, caches and the allocator's arenas have settled by then); the
verdict compares the last sample with it. Target: no process grows by more than 10 %.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
import redis
from celery import Celery

from bench.harness import loyalty_environment, recreate_database, say
from models.domain.names import ADJUST_POINTS_TASK, ADJUSTMENTS_QUEUE, UPSERT_CUSTOMER_TASK
from workers.process import ROOT, WorkerProcess

DATABASE = "loyalty_bench_soak"
BROKER = "redis://127.0.0.1:6379/5"
RESULTS = "redis://127.0.0.1:6379/6"
SHOP = "bench-shop"
CUSTOMERS = 1_000
QUEUE = ADJUSTMENTS_QUEUE
LOG = ROOT / "bench" / "results" / "soak-worker.log"
TARGET_GROWTH = 0.10


def environment() -> dict[str, str]:
    return loyalty_environment(DATABASE, BROKER, RESULTS)


def prepare() -> None:
    """A fresh database with one shop, empty broker and result databases."""
    recreate_database(DATABASE)
    for url in (BROKER, RESULTS):
        redis.Redis.from_url(url).flushdb()
    loyalty = str(ROOT / ".venv" / "bin" / "loyalty")
    for args in (["db", "upgrade"], ["shop", "create", SHOP]):
        subprocess.run([loyalty, *args], env=environment(), check=True, capture_output=True)


def applied() -> int:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={DATABASE}") as db:
        row = db.execute("SELECT count(*) FROM processed_commands").fetchone()
    return int(row[0]) if row else 0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker_processes(main: int) -> list[int]:
    """The worker's main process, then its pool processes (in pid order)."""
    children: list[int] = []
    for task in Path(f"/proc/{main}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    return [main, *sorted(children)]


class Publisher:
    """Keeps up to ``backlog`` commands queued, published in batches of one pipeline each."""

    def __init__(self, total: int, backlog: int, seed: int) -> None:
        # No result backend: Celery would subscribe to each command's result.
        self.app = Celery("soak-publisher", broker=BROKER, set_as_current=False)
        self.total = total
        self.backlog = backlog
        self.sent = 0
        self.rng = random.Random(seed)
        self.broker = redis.Redis.from_url(BROKER)

    def upsert_customers(self) -> None:
        commands = [
            {
                "command_id": f"soak-customer-{n}",
                "shop_id": SHOP,
                "customer_id": f"c{n}",
                "email": f"c{n}@example.com",
            }
            for n in range(CUSTOMERS)
        ]
        self._send(UPSERT_CUSTOMER_TASK, commands)

    def top_up(self) -> None:
        queued = int(self.broker.llen(QUEUE))  # type: ignore[arg-type]  # redis-py's sync|async
        room = min(self.backlog - queued, self.total - self.sent)
        last = self.sent + room == self.total
        if room <= 0 or (room < self.backlog // 4 and not last):
            return
        commands = [
            {
                "command_id": f"soak-{self.sent + n}",
                "shop_id": SHOP,
                "customer_id": f"c{self.rng.randrange(CUSTOMERS)}",
                "adjustment": self.rng.choice((1, 5, 10, 50, -3)),
            }
            for n in range(room)
        ]
        self._send(ADJUST_POINTS_TASK, commands)
        self.sent += room

    def _send(self, task_name: str, commands: Sequence[Mapping[str, object]]) -> None:
        with self.app.producer_or_acquire() as producer, producer.batch():
            for command in commands:
                self.app.send_task(task_name, args=[command], queue=QUEUE, producer=producer)


def run(commands: int, backlog: int, sample_seconds: float, seed: int) -> list[list[int]]:
    """Samples of [applied, rss of each worker process...], until every command is applied."""
    prepare()
    publisher = Publisher(commands, backlog, seed)
    publisher.upsert_customers()
    samples: list[list[int]] = []
    worker = WorkerProcess("soak", LOG, env=environment(), concurrency=2)
    with worker.start():
        worker.wait_ready(publisher.app)
        next_sample = time.monotonic()
        while (done := applied()) < commands + CUSTOMERS:
            worker.check_alive()
            publisher.top_up()
            if time.monotonic() >= next_sample:
                samples.append([done, *map(rss_kib, worker_processes(worker.pid))])
                say(f"{done:>9,} applied  rss KiB " + " ".join(map(str, samples[-1][1:])))
                next_sample += sample_seconds
            time.sleep(0.5)
        samples.append([applied(), *map(rss_kib, worker_processes(worker.pid))])
    redis.Redis.from_url(RESULTS).flushdb()  # a million results: let Redis have its memory back
    return samples


def report(samples: list[list[int]], commands: int) -> bool:
    baseline = next(s for s in samples if s[0] >= CUSTOMERS + commands // 10)
    last = samples[-1]
    say(f"\nworker RSS across {commands:,} commands (baseline at {baseline[0]:,} applied)")
    ok = True
    names = ["main", *(f"pool {n}" for n in range(1, len(last) - 1))]
    for name, before, after in zip(names, baseline[1:], last[1:], strict=False):
        growth = after / before - 1
        ok = ok and growth <= TARGET_GROWTH
        say(f"  {name:<7} {before / 1024:7.1f} MiB -> {after / 1024:7.1f} MiB  ({growth:+.1%})")
    peak = max(sum(sample[1:]) for sample in samples)
    say(f"  peak, all processes: {peak / 1024:.1f} MiB; target: each within +{TARGET_GROWTH:.0%}")
    say("  PASS" if ok else "  MISSED")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    samples = run(args.commands, args.backlog, args.sample_seconds, args.seed)
    return 0 if report(samples, args.commands) else 1


if __name__ == "__main__":
    raise SystemExit(main())
