"""5,000 live commands through a real worker's micro-batches: same-account bursts, duplicates in
one batch and across batches, stale revisions, rejections and invalid commands mixed in. Every
result must be what the same commands give applied one at a time, and every command applied once.

The worker runs one pool process, so its batches are applied one after another in message order,
which is what makes "the same result as one at a time" exact; the chaos suite runs two."""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, func, select

from models.persistence.tables import (
    accounts,
    ledger_entries,
    processed_commands,
    rejected_messages,
)
from models.services import command_engine
from tests.support import environment
from tests.support.celery_apps import app_for, close_app
from tests.support.factories import create_shop
from tests.support.planted_bug import PLANTED
from workers.db import Database
from workers.process import ROOT, WorkerProcess

pytestmark = pytest.mark.e2e

BROKER = environment.redis_url(9)
COMMANDS = 5_000
CUSTOMERS = 60
SEED = 20261202


def workload(shop_id: str, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """(task name, command) in publishing order."""
    sent: list[tuple[str, dict[str, Any]]] = [
        (
            "loyalty.upsert_customer",
            {"command_id": f"new-{n}", "shop_id": shop_id, "customer_id": f"c{n}"},
        )
        for n in range(CUSTOMERS)
    ]
    while len(sent) < COMMANDS:
        roll = rng.random()
        if roll < 0.05 and len(sent) > 400:  # a duplicate from batches ago
            sent.append(sent[rng.randrange(CUSTOMERS, len(sent) - 300)])
            continue
        customer = f"c{rng.randrange(CUSTOMERS + 3)}"  # a few never exist
        for _ in range(rng.choice([1, 1, 1, 3, 8])):  # bursts on one account
            command: dict[str, Any] = {
                "command_id": f"cmd-{len(sent)}",
                "shop_id": shop_id,
                "customer_id": customer,
                "adjustment": rng.choice([-300, -40, -5, 5, 25, 100, 250]),
                "send_email": False,
            }
            if rng.random() < 0.2:
                command["on_insufficient_points"] = "reject"
            if rng.random() < 0.1:
                command["expected_revision"] = rng.randrange(6)  # often stale
            if rng.random() < 0.03:
                command["adjustment"] = "ten"  # invalid
            sent.append(("loyalty.adjust_points", command))
            if rng.random() < 0.05:  # the same message again, at once: same batch, mostly
                sent.append(sent[-1])
    return sent[:COMMANDS]


def outline(result: dict[str, Any]) -> tuple[Any, ...]:
    """A result without what differs between two runs (ids of new rows, timestamps)."""
    attributes = result.get("data", {}).get("attributes", {})
    return (
        result["status"],
        result.get("error", {}).get("code"),
        attributes.get("applied_adjustment"),
        attributes.get("points_after"),
        result.get("created"),
    )


@contextlib.contextmanager
def one_process_worker(name: str, imports: Sequence[str] = ()) -> Iterator[Celery]:
    """A worker of one pool process on the module's own broker database, and an app for it."""
    with redis.Redis.from_url(BROKER) as connection:
        connection.flushdb()
    env = environment.worker_environment(LOYALTY_BROKER_URL=BROKER)
    app = app_for(env)
    log_path = ROOT / ".loyalty" / f"worker-{name}.log"
    with WorkerProcess(name, log_path, concurrency=1, env=env, imports=imports) as worker:
        worker.start().wait_ready(app)
        yield app
    close_app(app)


@pytest.fixture
def batch_worker(engine: Engine) -> Iterator[Celery]:
    with one_process_worker("batches") as app:
        yield app


def test_five_thousand_live_commands_give_the_results_of_one_at_a_time(
    batch_worker: Celery,
) -> None:
    app = batch_worker
    database = Database(environment.DATABASE_URL)
    live_shop, twin_shop = (f"batch-{uuid.uuid4().hex[:8]}" for _ in range(2))
    create_shop(database.unit_of_work(), live_shop)
    create_shop(database.unit_of_work(), twin_shop)
    sent = workload(live_shop, random.Random(SEED))

    task_ids = [app.send_task(name, args=[command]).id for name, command in sent]
    live = _collect(app, task_ids, timeout=120)
    twin = [
        (command_engine.upsert_customer if "upsert" in name else command_engine.adjust_points)(
            database.unit_of_work(), {**command, "shop_id": twin_shop}
        )
        for name, command in sent
    ]

    assert [outline(r) for r in live] == [outline(r) for r in twin]
    assert _state(database, live_shop) == _state(database, twin_shop)
    stored, entries, _ = _state(database, live_shop)
    assert stored == len({command["command_id"] for _, command in sent if _valid(command)})
    assert entries == len({r["transaction_id"] for r in live if "transaction_id" in r})
    database.engine.dispose()


@pytest.fixture
def worker_with_a_bug(engine: Engine) -> Iterator[Celery]:
    with one_process_worker("planted-bug", imports=["tests.support.planted_bug"]) as app:
        yield app


def test_a_bug_in_one_command_of_a_live_batch_spares_the_others_and_the_worker(
    worker_with_a_bug: Celery, engine: Engine
) -> None:
    app = worker_with_a_bug
    shop = f"batch-{uuid.uuid4().hex[:8]}"
    database = Database(environment.DATABASE_URL)
    create_shop(database.unit_of_work(), shop)
    command_engine.upsert_customer(
        database.unit_of_work(), {"command_id": "new", "shop_id": shop, "customer_id": "ada"}
    )
    database.engine.dispose()
    commands = [
        {"command_id": f"c{n}", "shop_id": shop, "customer_id": "ada", "adjustment": 10}
        for n in range(40)
    ]
    commands[17]["command_id"] = f"{PLANTED}17"
    burst = [app.send_task("loyalty.adjust_points", args=[command]) for command in commands]
    for result in burst:
        result.get(timeout=60, propagate=False)
    after = app.send_task("loyalty.adjust_points", args=[{**commands[0], "command_id": "later"}])

    assert after.get(timeout=60)["status"] == "applied", "the worker goes on"
    assert [r.state for r in burst] == ["SUCCESS"] * 17 + ["FAILURE"] + ["SUCCESS"] * 22
    assert [cast(dict[str, Any], r.result)["status"] for r in burst if r.state == "SUCCESS"] == [
        "applied"
    ] * 39
    with engine.connect() as connection:
        recorded = connection.execute(
            select(rejected_messages.c.code).where(rejected_messages.c.shop_id == shop)
        ).all()
        balance = connection.execute(
            select(accounts.c.balance).where(accounts.c.shop_id == shop)
        ).scalar_one()
    assert recorded == [("internal_error",)]
    assert balance == 400


def _state(database: Database, shop_id: str) -> tuple[int, int, list[Any]]:
    """Stored results, ledger entries, and every account's balance and revision."""
    with database.engine.connect() as connection:
        stored = connection.execute(
            select(func.count()).where(processed_commands.c.shop_id == shop_id)
        ).scalar_one()
        entries = connection.execute(
            select(func.count()).where(ledger_entries.c.shop_id == shop_id)
        ).scalar_one()
        balances = connection.execute(
            select(accounts.c.customer_id, accounts.c.balance, accounts.c.revision)
            .where(accounts.c.shop_id == shop_id)
            .order_by(accounts.c.customer_id)
        ).all()
    return stored, entries, [tuple(row) for row in balances]


def _valid(command: dict[str, Any]) -> bool:
    return not isinstance(command.get("adjustment", 0), str)


def _collect(app: Celery, task_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Every task's stored result, once all are there."""
    backend: Any = app.backend
    deadline = time.monotonic() + timeout
    keys = [backend.get_key_for_task(task_id) for task_id in task_ids]
    while True:
        raw = backend.client.mget(keys)
        if all(value is not None for value in raw) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = sum(value is None for value in raw)
    assert missing == 0, f"{missing} of {len(task_ids)} results never arrived"
    return [backend.decode_result(value)["result"] for value in raw]
