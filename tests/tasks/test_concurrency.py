"""Two writers on committed data: what the savepoint-isolated tests cannot show."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from models.persistence.tables import ledger_entries
from models.services import command_engine
from tests.support import environment
from tests.support.factories import adjustment, create_customer, create_shop
from workers.db import Database


@pytest.fixture
def committed(engine: Engine) -> Iterator[Database]:
    database = Database(environment.DATABASE_URL)
    yield database
    database.engine.dispose()


def in_threads(work: Callable[[int], Any], threads: int = 2) -> list[Any]:
    results: list[Any] = [None] * threads
    start = threading.Barrier(threads)

    def run(index: int) -> None:
        start.wait()
        results[index] = work(index)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return results


def test_racing_duplicates_apply_once_and_agree(committed: Database) -> None:
    shop_id = f"race-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    create_customer(committed.unit_of_work(), shop_id, "hot")
    commands = [adjustment(shop_id, "hot", adjustment=i + 1) for i in range(40)]

    def send_all(_: int) -> list[dict[str, Any]]:
        return [command_engine.adjust_points(committed.unit_of_work(), c) for c in commands]

    first, second = in_threads(send_all)

    assert first == second
    with committed.engine.connect() as connection:
        entries = connection.execute(
            select(func.count(), func.sum(ledger_entries.c.applied)).where(
                ledger_entries.c.shop_id == shop_id
            )
        ).one()
    assert tuple(entries) == (40, sum(range(1, 41)))


def test_a_hot_account_under_two_writers_ends_exact(committed: Database) -> None:
    shop_id = f"hot-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    create_customer(committed.unit_of_work(), shop_id, "hot")

    def send(index: int) -> list[dict[str, Any]]:
        sign = 1 if index == 0 else -1
        return [
            command_engine.adjust_points(
                committed.unit_of_work(),
                adjustment(shop_id, "hot", adjustment=sign * 3, on_insufficient_points="reject"),
            )
            for _ in range(60)
        ]

    results = [r for batch in in_threads(send) for r in batch]

    applied = [
        r["data"]["attributes"]["applied_adjustment"] for r in results if r["status"] == "applied"
    ]
    refused = [r for r in results if r["status"] == "rejected"]
    assert all(r["error"]["code"] == "insufficient_points" for r in refused)
    final = max(results, key=lambda r: r.get("account", {}).get("revision", -1))
    assert final["account"]["points"]["balance"] == sum(applied) >= 0
    assert final["account"]["revision"] == len(applied)
