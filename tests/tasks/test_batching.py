"""A live batch as the worker's pool process applies it: one transaction, message order, results
under each task id, bugs isolated, faults handed back to the broker."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.exc import OperationalError

from models.domain import planner
from models.domain.names import ADJUST_POINTS_TASK, UPSERT_CUSTOMER_TASK
from models.domain.parsing import ParsedItem
from models.persistence.tables import ledger_entries, processed_commands, rejected_messages
from models.persistence.unit_of_work import UnitOfWork
from tasks.commands import apply_requests
from tests.support.batches import request, stored_result, stored_state
from tests.support.factories import account_row, adjustment, create_customer, create_shop
from workers.app import app


@pytest.fixture
def shop(uow: UnitOfWork, shop_id: str) -> str:
    create_shop(uow, shop_id)
    create_customer(uow, shop_id, "ada", email="ada@example.com")
    return shop_id


def test_commands_for_one_account_apply_in_message_order_against_the_revision_they_leave(
    connection: Connection, shop: str
) -> None:
    revision = account_row(connection, shop, "ada").revision
    batch = [
        request(ADJUST_POINTS_TASK, adjustment(shop, "ada", adjustment=100)),
        request(
            ADJUST_POINTS_TASK,
            adjustment(shop, "ada", adjustment=-30, expected_revision=revision + 1),
        ),
        request(  # stale: the command before it moved the revision on
            ADJUST_POINTS_TASK,
            adjustment(shop, "ada", adjustment=-30, expected_revision=revision + 1),
        ),
        request(
            ADJUST_POINTS_TASK,
            adjustment(shop, "ada", adjustment=-500, on_insufficient_points="reject"),
        ),
        request(ADJUST_POINTS_TASK, adjustment(shop, "ada", adjustment=-500)),
    ]

    verdict = apply_requests(app, batch)

    results = [stored_result(r.id) for r in batch]
    assert verdict["requeue"] == []
    assert [r["status"] for r in results] == [
        "applied", "applied", "rejected", "rejected", "applied",
    ]  # fmt: skip
    assert results[2]["error"]["code"] == "revision_conflict"
    assert results[3]["error"]["code"] == "insufficient_points"
    assert [
        r["data"]["attributes"]["applied_adjustment"] for r in (results[0], results[1], results[4])
    ] == [
        100, -30, -70,
    ]  # fmt: skip
    assert account_row(connection, shop, "ada").balance == 0
    assert account_row(connection, shop, "ada").revision == revision + 3


def test_the_same_command_twice_in_one_batch_applies_once_and_both_get_its_result(
    connection: Connection, shop: str
) -> None:
    command = adjustment(shop, "ada", adjustment=40, command_id="twice")
    batch = [request(ADJUST_POINTS_TASK, command), request(ADJUST_POINTS_TASK, command)]

    apply_requests(app, batch)

    first, second = (stored_result(r.id) for r in batch)
    assert first == second
    assert first["status"] == "applied"
    ledger = connection.execute(
        select(ledger_entries.c.applied).where(ledger_entries.c.shop_id == shop)
    ).all()
    assert [row.applied for row in ledger] == [40]


def test_a_new_customer_upserted_then_adjusted_in_one_batch(
    connection: Connection, shop: str
) -> None:
    batch = [
        request(
            UPSERT_CUSTOMER_TASK,
            {"command_id": "new-bob", "shop_id": shop, "customer_id": "bob"},
        ),
        request(ADJUST_POINTS_TASK, adjustment(shop, "bob", adjustment=25)),
    ]

    apply_requests(app, batch)

    assert [stored_result(r.id)["status"] for r in batch] == ["applied", "applied"]
    assert stored_result(batch[0].id)["created"] is True
    assert account_row(connection, shop, "bob").balance == 25


def test_an_invalid_message_is_rejected_alone(connection: Connection, shop: str) -> None:
    good = adjustment(shop, "ada", adjustment=5)
    batch = [
        request(ADJUST_POINTS_TASK, good, "extra"),
        request(ADJUST_POINTS_TASK, {**good, "command_id": "bad", "adjustment": "5"}),
        request(ADJUST_POINTS_TASK, command=good),
    ]

    apply_requests(app, batch)

    results = [stored_result(r.id) for r in batch]
    assert [r["status"] for r in results] == ["rejected", "rejected", "applied"]
    assert results[0]["error"]["details"]["errors"][0]["field"] == "command"
    assert results[1]["error"]["details"]["errors"][0]["field"] == "adjustment"


def test_a_bug_in_one_command_leaves_its_batch_mates_applied(
    connection: Connection, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = planner._Planner.apply

    def planted(self: Any, item: ParsedItem) -> dict[str, Any]:
        if item.command is not None and item.command.command_id == "boom":
            raise ZeroDivisionError("planted")
        return real_apply(self, item)

    monkeypatch.setattr(planner._Planner, "apply", planted)
    batch = [
        request(ADJUST_POINTS_TASK, adjustment(shop, "ada", adjustment=10)),
        request(ADJUST_POINTS_TASK, adjustment(shop, "ada", adjustment=20, command_id="boom")),
        request(ADJUST_POINTS_TASK, adjustment(shop, "ada", adjustment=30)),
    ]

    verdict = apply_requests(app, batch)

    assert verdict["requeue"] == []
    assert verdict["outcomes"][batch[1].id].startswith("failed: ZeroDivisionError")
    assert stored_result(batch[0].id)["status"] == stored_result(batch[2].id)["status"] == "applied"
    assert stored_state(batch[1].id) == "FAILURE"
    assert account_row(connection, shop, "ada").balance == 40
    (recorded,) = connection.execute(
        select(rejected_messages).where(rejected_messages.c.command_id == "boom")
    ).all()
    assert recorded.code == "internal_error"
    assert recorded.shop_id == shop
    claimed = connection.execute(
        select(processed_commands).where(processed_commands.c.command_id == "boom")
    ).all()
    assert claimed == [], "a bug claims no idempotency key: the command can be sent again"


def test_a_database_that_stays_down_hands_the_whole_batch_back(
    connection: Connection, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_REDELIVERY_BOUND", "20")  # a fault window of 2 s

    def down(uow: UnitOfWork, items: list[ParsedItem]) -> list[dict[str, Any]]:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("models.services.command_engine.apply_batch", down)
    batch = [request(ADJUST_POINTS_TASK, adjustment(shop, "ada", adjustment=n)) for n in (1, 2)]

    verdict = apply_requests(app, batch)

    assert sorted(verdict["requeue"]) == sorted(r.id for r in batch)
    assert account_row(connection, shop, "ada").balance == 0
