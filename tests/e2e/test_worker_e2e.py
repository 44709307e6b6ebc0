"""A real ``celery worker`` with 2 processes applies thousands of commands published over Redis,
every one of them twice, and the books must balance to the point.

Two processes apply commands in no fixed order, so the scenario is built to make every final
balance predictable anyway: customers that take random deltas start with enough points that no
order can reach zero, and the floor, refusal and set-balance cases get one command per customer.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from celery.result import AsyncResult, ResultSet
from sqlalchemy import Engine, func, select

from models.domain.names import ADJUST_POINTS_TASK
from models.persistence.tables import accounts, ledger_entries, processed_commands
from workers.client.publisher import (
    publish,
    publish_adjustment,
    publish_customer_upsert,
)
from workers.process import WorkerProcess

pytestmark = pytest.mark.e2e

STEADY_CUSTOMERS = 200
STEADY_COMMANDS_EACH = 6
HOT_COMMANDS = 500
ONE_SHOT_CUSTOMERS = 30
UNKNOWN_CUSTOMER_COMMANDS = 20
INVALID_COMMANDS = 200


def wait_all(pending: list[AsyncResult[Any]], timeout: float = 240) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = ResultSet(pending).join_native(timeout=timeout)
    return results


class Scenario:
    """Commands and what the books must say once they are all applied."""

    def __init__(self, shop_id: str, seed: int) -> None:
        self.shop_id = shop_id
        self.random = random.Random(seed)
        self.expected_balance: dict[str, int] = {}
        self.expected_codes: dict[str, str] = {}
        self.setup: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.invalid: list[tuple[Any, str]] = []

    def command(self, customer_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "command_id": str(uuid.uuid4()),
            "shop_id": self.shop_id,
            "customer_id": customer_id,
            **fields,
        }

    def build(self) -> Scenario:
        rng = self.random
        for i in range(STEADY_CUSTOMERS):
            self._customer(f"steady-{i}", opening=10_000)
            for _ in range(STEADY_COMMANDS_EACH):
                delta = rng.choice([-1, 1]) * rng.randint(1, 300)
                self._apply(f"steady-{i}", delta, adjustment=delta, note=f"delta {delta}")
        self._customer("hot", opening=100_000)
        for _ in range(HOT_COMMANDS):
            delta = rng.choice([-1, 1]) * rng.randint(1, 50)
            self._apply("hot", delta, amount=delta, source="e2e")
        for i in range(ONE_SHOT_CUSTOMERS):
            self._customer(f"floor-{i}", opening=100)
            self._apply(f"floor-{i}", -100, adjustment=-150)
            self._customer(f"reject-{i}", opening=100)
            self._reject(
                f"reject-{i}",
                "insufficient_points",
                adjustment=-150,
                on_insufficient_points="reject",
            )
            self._customer(f"set-{i}", opening=100)
            self._apply(f"set-{i}", 677, balance=777, adjustment=5)
        for i in range(UNKNOWN_CUSTOMER_COMMANDS):
            self._reject(f"unknown-{i}", "customer_not_found", adjustment=5)
        self._invalid_commands()
        return self

    def _customer(self, customer_id: str, opening: int) -> None:
        self.expected_balance[customer_id] = opening
        self.setup.append(self.command(customer_id, email=f"{customer_id}@example.com"))
        self.setup.append(self.command(customer_id, adjustment=opening, note="opening balance"))

    def _apply(self, customer_id: str, delta: int, **fields: Any) -> None:
        self.expected_balance[customer_id] += delta
        command = self.command(customer_id, **fields)
        self.expected_codes[command["command_id"]] = "applied"
        self.commands.append(command)

    def _reject(self, customer_id: str, code: str, **fields: Any) -> None:
        command = self.command(customer_id, **fields)
        self.expected_codes[command["command_id"]] = code
        self.commands.append(command)

    def _invalid_commands(self) -> None:
        base = {"shop_id": self.shop_id, "customer_id": "steady-0"}
        shapes: list[tuple[dict[str, Any], str]] = [
            ({"adjustment": "500"}, "adjustment"),
            ({"adjustment": 12.5}, "adjustment"),
            ({"adjustment": True}, "adjustment"),
            ({"adjustment": 0}, "adjustment"),
            ({"adjustment": -10_000_000}, "adjustment"),
            ({"balance": 1_000_000_000}, "balance"),
            ({"adjustment": 5, "bonus": 1}, "bonus"),
            ({"adjustment": 5, "note": "x" * 501}, "note"),
            ({"adjustment": 5, "note": "tab\ttab\x1b[31m"}, "note"),
            ({}, "adjustment"),
        ]
        for i in range(INVALID_COMMANDS):
            if i % 20 == 19:
                self.invalid.append(([f"not an object {i}"], "command"))
                continue
            fields, field = shapes[i % len(shapes)]
            self.invalid.append(({"command_id": f"bad-{uuid.uuid4()}", **base, **fields}, field))


@pytest.fixture(scope="module")
def scenario(worker: WorkerProcess, engine: Engine) -> tuple[Scenario, list[Any]]:
    shop_id = f"e2e-{uuid.uuid4().hex[:8]}"
    from workers.db import database

    with database.unit_of_work() as uow:
        uow.shops.create(shop_id, "End to end")
        uow.commit()
    scenario = Scenario(shop_id, seed=20261122).build()

    upserts = [c for c in scenario.setup if "email" in c]
    openings = [c for c in scenario.setup if "email" not in c]
    assert all(
        r["status"] == "applied" for r in wait_all([publish_customer_upsert(c) for c in upserts])
    )
    assert all(
        r["status"] == "applied" for r in wait_all([publish_adjustment(c) for c in openings])
    )

    deliveries: list[tuple[Any, Any]] = [(c, c) for c in scenario.commands]
    deliveries += [(payload, payload) for payload, _ in scenario.invalid]
    deliveries = deliveries * 2
    random.Random(7).shuffle(deliveries)
    pending = [publish_adjustment_raw(payload) for payload, _ in deliveries]
    results = wait_all(pending)
    return scenario, list(zip([d for d, _ in deliveries], results, strict=True))


def publish_adjustment_raw(payload: Any) -> AsyncResult[Any]:
    if isinstance(payload, dict):
        # Unvalidated: the invalid ones must reach the worker (publish_adjustment refuses them).
        return publish(ADJUST_POINTS_TASK, payload)
    from workers.app import app

    return app.send_task("loyalty.adjust_points", args=payload, queue="loyalty.adjustments")


def test_every_delivery_of_a_command_returns_the_same_result(
    scenario: tuple[Scenario, list[Any]],
) -> None:
    plan, delivered = scenario
    by_command: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for payload, result in delivered:
        if isinstance(payload, dict) and payload["command_id"] in plan.expected_codes:
            by_command[payload["command_id"]].append(result)

    assert len(plan.commands) + len(plan.invalid) >= 2000
    assert set(by_command) == set(plan.expected_codes)
    for command_id, (first, second) in by_command.items():
        assert first == second, command_id
        expected = plan.expected_codes[command_id]
        actual = first["status"] if first["status"] == "applied" else first["error"]["code"]
        assert actual == expected, (command_id, first)


def test_every_invalid_command_is_rejected_naming_its_field(
    scenario: tuple[Scenario, list[Any]],
) -> None:
    plan, delivered = scenario
    expected_field = {repr(payload): field for payload, field in plan.invalid}
    seen: Counter[str] = Counter()
    for payload, result in delivered:
        key = repr(payload)
        if key not in expected_field:
            continue
        seen[key] += 1
        assert result["status"] == "rejected"
        assert result["error"]["code"] == "invalid_command"
        fields = [e["field"] for e in result["error"]["details"]["errors"]]
        assert expected_field[key] in fields, (payload, result)
    assert set(seen) == set(expected_field)
    assert set(seen.values()) == {2}


def test_each_command_is_applied_exactly_once(
    scenario: tuple[Scenario, list[Any]], engine: Engine
) -> None:
    plan, _ = scenario
    applied_ids = {cid for cid, code in plan.expected_codes.items() if code == "applied"}
    with engine.connect() as connection:
        per_command = dict(
            connection.execute(
                select(ledger_entries.c.command_id, func.count())
                .where(ledger_entries.c.shop_id == plan.shop_id)
                .group_by(ledger_entries.c.command_id)
            ).all()
        )
        stored = connection.execute(
            select(func.count())
            .select_from(processed_commands)
            .where(processed_commands.c.shop_id == plan.shop_id)
        ).scalar_one()
    assert applied_ids <= set(per_command)
    assert set(per_command.values()) == {1}
    openings = sum(1 for c in plan.setup if "email" not in c)
    assert len(per_command) == len(applied_ids) + openings
    assert stored == len(plan.setup) + len(plan.commands)


def test_every_balance_is_exact_and_equals_its_ledger(
    scenario: tuple[Scenario, list[Any]], engine: Engine
) -> None:
    plan, _ = scenario
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                accounts.c.customer_id,
                accounts.c.balance,
                accounts.c.revision,
                select(func.coalesce(func.sum(ledger_entries.c.applied), 0))
                .where(ledger_entries.c.account_id == accounts.c.id)
                .scalar_subquery()
                .label("ledger_sum"),
                select(func.count())
                .where(ledger_entries.c.account_id == accounts.c.id)
                .scalar_subquery()
                .label("entries"),
            ).where(accounts.c.shop_id == plan.shop_id)
        ).all()

    balances = {row.customer_id: row.balance for row in rows}
    assert balances == plan.expected_balance
    for row in rows:
        assert row.ledger_sum == row.balance, row.customer_id
        assert row.entries == row.revision, row.customer_id


def test_the_hot_account_ledger_is_one_unbroken_chain(
    scenario: tuple[Scenario, list[Any]], engine: Engine
) -> None:
    plan, _ = scenario
    with engine.connect() as connection:
        chain = connection.execute(
            select(ledger_entries.c.balance_before, ledger_entries.c.balance_after)
            .join(accounts, accounts.c.id == ledger_entries.c.account_id)
            .where(accounts.c.shop_id == plan.shop_id, accounts.c.customer_id == "hot")
            .order_by(ledger_entries.c.id)
        ).all()
    assert len(chain) == HOT_COMMANDS + 1
    assert chain[0].balance_before == 0
    for previous, current in itertools.pairwise(chain):
        assert current.balance_before == previous.balance_after
    assert chain[-1].balance_after == plan.expected_balance["hot"]
