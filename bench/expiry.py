"""What an expiry policy costs a shop's commands, measured side by side in one run.

Two shops of the same customers, one with no policy and one whose points expire after a year,
get the same adjustments (credits and debits) through the project's own engine
(``command_engine.apply_batch``, batches of ``LOYALTY_BATCH_MAX_COMMANDS``), in alternating rounds
so the machine's drift cancels. Prints each shop's commands per second, the ratio, and the SQL
statements of each batch as SQLAlchemy runs them (a COPY is not counted): a shop without a policy
runs the same ones as before there were policies (``tests/models/persistence/test_batches.py``
pins them); a shop with one reads its accounts' lots and writes the lots that changed.

    .venv/bin/python -m bench.expiry [--database-url URL] [--customers 500] [--batches 40]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event

from bench.throughput.config import say
from bench.throughput.database import conninfo

NO_POLICY, YEARLY = "bench-no-policy", "bench-yearly"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/loyalty_bench_expiry",
    )
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--batches", type=int, default=40, help="batches per shop per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    if "bench" not in args.database_url.rsplit("/", 1)[-1]:
        raise SystemExit("the database is dropped: its name must contain 'bench'")

    from workers.db import Database
    from workers.settings import settings

    _recreate(args.database_url)
    database = Database(args.database_url)
    customers = [f"c{number:05d}" for number in range(args.customers)]
    _seed(database, customers)
    size = settings().batches.max_commands
    rng = random.Random(1)
    elapsed = {NO_POLICY: 0.0, YEARLY: 0.0}
    statements: dict[str, list[int]] = {NO_POLICY: [], YEARLY: []}
    order = [NO_POLICY, YEARLY]
    for round_number in range(args.rounds):
        for shop in order if round_number % 2 == 0 else order[::-1]:
            batches = [_batch(rng, shop, customers, size) for _ in range(args.batches)]
            seconds, counts = _apply(database, batches)
            elapsed[shop] += seconds
            statements[shop] += counts
    total = args.rounds * args.batches * size
    rate = {shop: total / seconds for shop, seconds in elapsed.items()}
    say(f"{total} commands per shop, batches of {size}, {args.rounds} alternating rounds")
    for shop in order:
        counts = sorted(set(statements[shop]))
        say(f"  {shop:16} {rate[shop]:8.0f} commands/s   SQL statements per batch: {counts}")
    say(f"  cost of the policy: {rate[NO_POLICY] / rate[YEARLY]:.2f}x the time per command")
    database.engine.dispose()
    return 0


def _recreate(url: str) -> None:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from workers.db import Database

    name = make_url(url).database or ""
    with psycopg.connect(**conninfo(url, "postgres"), autocommit=True) as server:
        server.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    Database(url).upgrade()


def _seed(database: Any, customers: list[str]) -> None:
    from models.services import command_engine
    from models.services.expiry import set_policy

    for shop in (NO_POLICY, YEARLY):
        with database.unit_of_work() as uow:
            uow.shops.create(shop, shop)
            uow.commit()
        command_engine.apply_batch(
            database.unit_of_work(),
            [_upsert(shop, customer) for customer in customers],
        )
    with database.unit_of_work() as uow:
        set_policy(uow, YEARLY, expire_after_days=365, reminder_days=14)
        uow.commit()


def _upsert(shop: str, customer: str) -> Any:
    from models.domain.commands import UPSERT_CUSTOMER
    from models.domain.parsing import parse_command_of

    command = {"command_id": f"u-{customer}", "shop_id": shop, "customer_id": customer}
    return parse_command_of(UPSERT_CUSTOMER, command | {"email": f"{customer}@bench.example"})


def _batch(rng: random.Random, shop: str, customers: list[str], size: int) -> list[Any]:
    from models.domain.commands import ADJUST_POINTS
    from models.domain.parsing import parse_command_of

    return [
        parse_command_of(
            ADJUST_POINTS,
            {
                "command_id": str(uuid.uuid4()),
                "shop_id": shop,
                "customer_id": rng.choice(customers),
                "adjustment": rng.randint(1, 500) if rng.random() < 0.8 else -rng.randint(1, 400),
            },
        )
        for _ in range(size)
    ]


def _apply(database: Any, batches: list[list[Any]]) -> tuple[float, list[int]]:
    """Seconds for the batches, one transaction each, and the statements each ran."""
    from models.persistence.unit_of_work import UnitOfWork
    from models.services.command_engine import apply_batch

    counts: list[int] = []
    seen = [0]

    def count(*_: Any) -> None:
        seen[0] += 1

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        start = time.perf_counter()
        for batch in batches:
            seen[0] = 0
            apply_batch(UnitOfWork(database.sessions, lambda owed: None), batch)
            counts.append(seen[0])
        seconds = time.perf_counter() - start
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    return seconds, counts


if __name__ == "__main__":
    raise SystemExit(main())
