"""How long a merchant migration takes, end to end, next to the same rows as single commands.

    .venv/bin/python -m bench.migration                      # 1,000,000 rows
    .venv/bin/python -m bench.migration --rows 100000 --single-rows 2000

(a) ``loyalty migrate SHOP FILE`` as a user runs it (check the file, enqueue, watch the applied
    count) with a real ``celery worker -Q loyalty.migrations -c 2``; timed from the command's
    start to its exit, then checked: every balance and lifetime as in the file, one ledger entry
    and two stored results per row.
(b) the same file again: nothing may be applied twice.
(c) a sample of the rows published as single ``loyalty.upsert_customer`` and
    ``loyalty.adjust_points`` commands to a ``loyalty.adjustments`` worker of the same
    concurrency, for the rate side by side.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench.harness import loyalty_environment, recreate_database, say
from models.domain.names import MIGRATIONS_QUEUE
from workers.process import ROOT, WorkerProcess

DATABASE = "loyalty_bench_migration"
BROKER = "redis://127.0.0.1:6379/12"
SHOP = "bench-shop"


def write_file(path: Path, rows: int, *, first: int = 0) -> dict[str, tuple[int, int]]:
    """A migration CSV; returns each customer's expected (balance, lifetime)."""
    rng = random.Random(rows)
    expected = {}
    with path.open("w") as out:
        out.write("customer_id,email,phone,first_name,last_name,balance,lifetime_points,note\n")
        for n in range(first, first + rows):
            balance = rng.randint(0, 50_000)
            lifetime = balance + rng.randint(0, 20_000)
            customer = f"cust-{n:07d}"
            expected[customer] = (balance, lifetime)
            out.write(
                f"{customer},customer{n}@example.com,+1 555 {n:07d},First{n},Last{n},"
                f"{balance},{lifetime},Migrated from the old program\n"
            )
    return expected


def environment() -> dict[str, str]:
    return loyalty_environment(DATABASE, BROKER, BROKER)


def loyalty(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "loyalty"), *args],
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = (done.stdout + done.stderr).replace("\r", "\n")
    if done.returncode != 0:
        raise SystemExit(f"loyalty {' '.join(args)} failed ({done.returncode}):\n{output}")
    return elapsed, output


def prepare() -> None:
    """A fresh database with one shop, an empty broker."""
    recreate_database(DATABASE)
    redis.Redis.from_url(BROKER).flushdb()
    loyalty("db", "upgrade")
    loyalty("shop", "create", SHOP)


def query(sql: str, *params: Any) -> Any:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={DATABASE}") as db:
        return db.execute(sql, params).fetchone()


def check(expected: dict[str, tuple[int, int]], prefix: str) -> list[str]:
    """Every account as in the file, and one ledger entry and two stored results per row."""
    problems = []
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={DATABASE}") as db:
        found = {
            customer: (balance, lifetime)
            for customer, balance, lifetime in db.execute(
                "SELECT customer_id, balance, lifetime FROM accounts "
                "WHERE shop_id = %s AND customer_id LIKE %s",
                (SHOP, f"{prefix}%"),
            )
        }
        wrong = sum(found.get(customer) != values for customer, values in expected.items())
        if wrong:
            problems.append(f"{wrong} accounts differ from the file")
        ledger, applied = db.execute(
            "SELECT count(*), coalesce(sum(applied), 0) FROM ledger_entries l "
            "JOIN accounts a ON a.id = l.account_id "
            "WHERE l.shop_id = %s AND a.customer_id LIKE %s",
            (SHOP, f"{prefix}%"),
        ).fetchone() or (0, 0)
    if ledger != len(expected):
        problems.append(f"{ledger} ledger entries for {len(expected)} rows")
    if applied != sum(balance for balance, _ in expected.values()):
        problems.append("the ledger's applied points do not add up to the balances")
    return problems


def summary_line(output: str) -> str:
    return next((line for line in output.splitlines() if line.startswith("Applied")), output)


# Run as its own process (with the benchmark's environment): argv is the file, the shop, and
# "customers" or "points".
_SINGLE_PUBLISHER = (
    "import sys, csv\n"
    "from workers.client.publisher import publish_adjustment, publish_customer_upsert\n"
    "for n, row in enumerate(csv.DictReader(open(sys.argv[1]))):\n"
    "    if sys.argv[3] == 'customers':\n"
    "        publish_customer_upsert({'command_id': f'single-{n}-c', 'shop_id': sys.argv[2],\n"
    "            'customer_id': row['customer_id'], 'email': row['email']})\n"
    "    else:\n"
    "        publish_adjustment({'command_id': f'single-{n}-p', 'shop_id': sys.argv[2],\n"
    "            'customer_id': row['customer_id'], 'balance': int(row['balance']),\n"
    "            'lifetime_points': int(row['lifetime_points']), 'send_email': False})\n"
)


def single_commands(rows: int, workdir: Path) -> float:
    """Rows per second through the single-command path: every customer's upsert, then (once
    those are in, as an adjustment needs its customer) every adjustment."""
    path = workdir / "single.csv"
    expected = write_file(path, rows, first=10_000_000)
    env = environment()
    publish_singles(path, "customers", env)
    log = ROOT / ".loyalty" / "bench-single-worker.log"
    with WorkerProcess("bench-single", log, concurrency=2, env=env, cwd=ROOT) as worker:
        started = time.monotonic()
        worker.start()
        wait_for_singles(rows, worker)
        publish_singles(path, "points", env)
        wait_for_singles(2 * rows, worker)
        elapsed = time.monotonic() - started
    problems = check(expected, "cust-1")
    if problems:
        raise SystemExit(f"single-command path: {problems}")
    return rows / elapsed


def publish_singles(path: Path, kind: str, env: dict[str, str]) -> None:
    """Every row of ``path`` as one command of ``kind`` ("customers" or "points")."""
    subprocess.run(
        [sys.executable, "-c", _SINGLE_PUBLISHER, str(path), SHOP, kind],
        env=env,
        check=True,
        cwd=ROOT,
    )


def wait_for_singles(count: int, worker: WorkerProcess) -> None:
    while (
        query(
            "SELECT count(*) FROM processed_commands WHERE shop_id = %s AND command_id LIKE %s",
            SHOP,
            "single-%",
        )[0]
        < count
    ):
        worker.check_alive()
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--single-rows", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)

    workdir = ROOT / ".loyalty" / "bench-migration"
    workdir.mkdir(parents=True, exist_ok=True)
    migration_file = workdir / f"merchant-{args.rows}.csv"
    say(f"writing {args.rows:,} rows to {migration_file}")
    expected = write_file(migration_file, args.rows)
    say(f"  {migration_file.stat().st_size / 1e6:,.0f} MB")
    prepare()

    log = ROOT / ".loyalty" / "bench-migration-worker.log"
    worker = WorkerProcess(
        "bench-migrations",
        log,
        queues=MIGRATIONS_QUEUE,
        concurrency=args.concurrency,
        env=environment(),
        cwd=ROOT,
    )
    with worker:
        worker.start()
        say("(a) loyalty migrate")
        first, output = loyalty("migrate", SHOP, str(migration_file))
        say(f"  {summary_line(output)}")
        problems = check(expected, "cust-0")
        say(f"  checked: {problems or 'all exact'}")
        say("(b) the same file again")
        again, output = loyalty("migrate", SHOP, str(migration_file))
        say(f"  {summary_line(output)}")
        problems += check(expected, "cust-0")
    say(f"(c) {args.single_rows:,} rows as single commands")
    single_rate = single_commands(args.single_rows, workdir)

    bulk_rate = args.rows / first
    say("")
    say(f"rows                      {args.rows:>12,}")
    say(f"(a) migration, wall       {first:>12,.1f} s   {bulk_rate:,.0f} rows/s")
    say(f"(b) same file again       {again:>12,.1f} s   nothing applied twice: {not problems}")
    say(f"(c) single commands       {'':>12}     {single_rate:,.0f} rows/s")
    say(f"(a)/(c)                   {bulk_rate / single_rate:>12,.1f} x")
    if problems:
        raise SystemExit(f"checks failed: {problems}")


if __name__ == "__main__":
    main()
