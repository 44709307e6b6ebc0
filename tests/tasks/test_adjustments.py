"""``loyalty.adjust_points`` run in-process against PostgreSQL, each test in a rolled-back
transaction."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from celery.exceptions import Reject
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from models.domain.names import RECALCULATE_TIER, SEND_POINTS_EARNED_EMAIL
from models.domain.parsing import ParsedItem
from models.persistence.tables import ledger_entries, outbox, processed_commands, rejected_messages
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tasks.live_commands import adjust_points
from tests.support.factories import (
    account_row,
    adjustment,
    create_customer,
    create_shop,
    ledger_rows,
)
from workers.db import Database


@pytest.fixture
def customer(uow: UnitOfWork, shop_id: str) -> str:
    create_shop(uow, shop_id)
    with uow:
        uow.tiers.set(shop_id, "Gold", 100_000)
        uow.commit()
    create_customer(uow, shop_id, "cust-1", email="ada@example.com")
    return "cust-1"


def count(connection: Connection, table: Any, shop_id: str) -> int:
    return connection.execute(
        select(func.count()).select_from(table).where(table.c.shop_id == shop_id)
    ).scalar_one()


def outbox_tasks(connection: Connection, transaction_id: str) -> list[str]:
    return list(
        connection.execute(
            select(outbox.c.task_name)
            .where(outbox.c.transaction_id == uuid.UUID(transaction_id))
            .order_by(outbox.c.id)
        ).scalars()
    )


class TestApplying:
    def test_an_increase_returns_both_shapes_and_writes_the_audit_trail(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        command = adjustment(
            shop_id, customer, adjustment=500, note="Goodwill", source="support", actor="agent-7"
        )

        result = adjust_points(command)

        assert result["status"] == "applied"
        assert result["command_id"] == command["command_id"]
        transaction_id = result["transaction_id"]
        assert uuid.UUID(transaction_id)
        assert result["data"] == {
            "type": "points_adjustment",
            "id": transaction_id,
            "attributes": {
                "customer_id": customer,
                "adjustment": 500,
                "applied_adjustment": 500,
                "points_before": 0,
                "points_after": 500,
                "current_points": 500,
                "note": "Goodwill",
            },
        }
        account = result["account"]
        assert account["points"] == {
            "balance": 500,
            "earned": 0,
            "redeemed": 0,
            "adjusted": 500,
            "expired": 0,
        }
        assert account["points_expiration"] is None
        assert account["lifetime_points"] == 500
        assert account["tier"] is None
        assert account["revision"] == 1
        assert account["last_activity_at"].endswith("Z")

        row = account_row(connection, shop_id, customer)
        assert (row.balance, row.lifetime, row.adjusted, row.revision) == (500, 500, 500, 1)
        assert row.last_activity_at is not None
        [entry] = ledger_rows(connection, shop_id)
        assert str(entry.transaction_id) == transaction_id
        assert (entry.requested, entry.applied) == (500, 500)
        assert (entry.balance_before, entry.balance_after) == (0, 500)
        assert (entry.lifetime_before, entry.lifetime_after) == (0, 500)
        assert (entry.note, entry.source, entry.actor) == ("Goodwill", "support", "agent-7")
        assert entry.command_id == command["command_id"]
        stored = connection.execute(
            select(processed_commands).where(
                processed_commands.c.shop_id == shop_id,
                processed_commands.c.command_id == command["command_id"],
            )
        ).one()
        assert (stored.status, stored.result) == ("applied", result)
        assert outbox_tasks(connection, transaction_id) == [
            RECALCULATE_TIER,
            SEND_POINTS_EARNED_EMAIL,
        ]

    def test_balance_sets_the_balance_and_wins_over_an_adjustment(
        self, shop_id: str, customer: str
    ) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=200))

        result = adjust_points(adjustment(shop_id, customer, balance=15, adjustment=1000))

        attributes = result["data"]["attributes"]
        assert (attributes["adjustment"], attributes["applied_adjustment"]) == (-185, -185)
        assert (attributes["points_before"], attributes["points_after"]) == (200, 15)
        assert result["account"]["points"]["adjusted"] == 15

    def test_a_deduction_past_zero_is_floored(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=300))

        result = adjust_points(adjustment(shop_id, customer, adjustment=-500))

        attributes = result["data"]["attributes"]
        assert (attributes["adjustment"], attributes["applied_adjustment"]) == (-500, -300)
        assert attributes["current_points"] == 0
        assert account_row(connection, shop_id, customer).lifetime == 0
        assert [e.applied for e in ledger_rows(connection, shop_id)] == [300, -300]

    def test_a_deduction_past_zero_can_be_refused_instead(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=300))

        result = adjust_points(
            adjustment(shop_id, customer, adjustment=-301, on_insufficient_points="reject")
        )

        assert result["status"] == "rejected"
        assert result["error"]["code"] == "insufficient_points"
        assert result["error"]["http_status"] == 422
        row = account_row(connection, shop_id, customer)
        assert (row.balance, row.revision) == (300, 1)
        assert len(ledger_rows(connection, shop_id)) == 1
        assert count(connection, processed_commands, shop_id) == 3  # upsert, applied, rejected

    def test_lifetime_stays_when_asked_to(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=100))

        result = adjust_points(
            adjustment(shop_id, customer, adjustment=-40, update_lifetime_points=False)
        )

        assert result["account"]["lifetime_points"] == 100
        assert result["account"]["points"]["balance"] == 60
        assert outbox_tasks(connection, result["transaction_id"]) == []

    def test_a_deduction_lowers_lifetime_points(self, shop_id: str, customer: str) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=100))

        result = adjust_points(adjustment(shop_id, customer, adjustment=-40))

        assert result["account"]["lifetime_points"] == 60

    def test_expected_revision_guards_against_stale_writers(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=10, expected_revision=0))

        stale = adjust_points(adjustment(shop_id, customer, adjustment=10, expected_revision=0))
        current = adjust_points(adjustment(shop_id, customer, adjustment=10, expected_revision=1))

        assert stale["status"] == "rejected"
        assert stale["error"]["code"] == "revision_conflict"
        assert stale["error"]["http_status"] == 409
        assert stale["error"]["details"] == {"expected_revision": 0, "current_revision": 1}
        assert current["account"]["revision"] == 2
        assert account_row(connection, shop_id, customer).balance == 20

    def test_no_email_for_a_decrease_an_opt_out_or_a_customer_without_email(
        self, uow: UnitOfWork, connection: Connection, shop_id: str, customer: str
    ) -> None:
        create_customer(uow, shop_id, "no-email")
        applied = [
            adjust_points(adjustment(shop_id, customer, adjustment=50, send_email=False)),
            adjust_points(adjustment(shop_id, customer, adjustment=-5)),
            adjust_points(adjustment(shop_id, "no-email", adjustment=50)),
        ]

        for result in applied:
            assert SEND_POINTS_EARNED_EMAIL not in outbox_tasks(
                connection, result["transaction_id"]
            )


class TestIdempotency:
    def test_the_same_command_twice_applies_once_and_returns_the_first_result(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        command = adjustment(shop_id, customer, adjustment=70, note="hello")
        first = adjust_points(command)

        again = adjust_points(dict(command))
        aliased = adjust_points(
            {k: v for k, v in command.items() if k not in ("adjustment", "note")}
            | {"amount": 70, "description": "  hello "}
        )

        assert again == first
        assert aliased == first
        assert account_row(connection, shop_id, customer).balance == 70
        assert len(ledger_rows(connection, shop_id)) == 1

    def test_a_reused_id_with_a_different_payload_is_a_conflict(
        self, connection: Connection, shop_id: str, customer: str
    ) -> None:
        command = adjustment(shop_id, customer, adjustment=70)
        first = adjust_points(command)

        conflict = adjust_points(command | {"adjustment": 71})

        assert conflict["status"] == "rejected"
        assert conflict["error"]["code"] == "idempotency_conflict"
        assert conflict["error"]["http_status"] == 409
        assert adjust_points(command) == first
        assert account_row(connection, shop_id, customer).balance == 70
        recorded = connection.execute(
            select(rejected_messages.c.code).where(rejected_messages.c.shop_id == shop_id)
        ).scalars()
        assert list(recorded) == ["idempotency_conflict"]

    def test_a_rejection_is_final_for_its_command_id(
        self, uow: UnitOfWork, shop_id: str, customer: str
    ) -> None:
        command = adjustment(shop_id, "later", adjustment=5)
        first = adjust_points(command)
        create_customer(uow, shop_id, "later")

        assert adjust_points(command) == first
        assert first["error"]["code"] == "customer_not_found"


class TestRejections:
    def test_unknown_shop(self, connection: Connection) -> None:
        result = adjust_points(adjustment("no-such-shop", "c", adjustment=5))

        assert result["error"]["code"] == "unknown_shop"
        assert result["error"]["http_status"] == 404
        assert count(connection, processed_commands, "no-such-shop") == 1

    def test_unknown_customer(self, shop_id: str, customer: str) -> None:
        result = adjust_points(adjustment(shop_id, "nobody", adjustment=5))

        assert result["error"]["code"] == "customer_not_found"
        assert result["error"]["http_status"] == 404

    def test_an_excluded_customer_keeps_the_balance_but_takes_no_adjustment(
        self, uow: UnitOfWork, connection: Connection, shop_id: str, customer: str
    ) -> None:
        adjust_points(adjustment(shop_id, customer, adjustment=40))
        create_customer(uow, shop_id, customer, excluded=True)

        refused = adjust_points(adjustment(shop_id, customer, adjustment=5))
        create_customer(uow, shop_id, customer, excluded=False)
        accepted = adjust_points(adjustment(shop_id, customer, adjustment=5))

        assert refused["error"]["code"] == "customer_excluded"
        assert refused["error"]["http_status"] == 403
        assert accepted["account"]["points"]["balance"] == 45
        assert account_row(connection, shop_id, customer).revision == 2

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"adjustment": "500"}, "adjustment"),
            ({"adjustment": 500.5}, "adjustment"),
            ({"adjustment": True}, "adjustment"),
            ({"adjustment": 0}, "adjustment"),
            ({"adjustment": 10_000_000}, "adjustment"),
            ({"balance": -1, "adjustment": None}, "balance"),
            ({"adjustment": None}, "adjustment"),
            ({"points": 5}, "points"),
            ({"note": "x" * 501}, "note"),
            ({"note": "bell\x07"}, "note"),
            ({"shop_id": None}, "shop_id"),
            ({"command_id": ""}, "command_id"),
        ],
        ids=[
            "string-amount",
            "float-amount",
            "bool-amount",
            "zero",
            "out-of-range",
            "negative-balance",
            "neither-amount-nor-balance",
            "unknown-field",
            "note-too-long",
            "control-character",
            "missing-shop",
            "empty-command-id",
        ],
    )
    def test_invalid_input_is_recorded_and_changes_nothing(
        self,
        connection: Connection,
        shop_id: str,
        customer: str,
        changes: dict[str, Any],
        field: str,
    ) -> None:
        command = adjustment(shop_id, customer, adjustment=5) | changes
        command = {k: v for k, v in command.items() if v is not None or k == "shop_id"}

        result = adjust_points(command)

        assert result["status"] == "rejected"
        assert result["error"]["code"] == "invalid_command"
        assert result["error"]["http_status"] == 400
        assert field in [e["field"] for e in result["error"]["details"]["errors"]]
        assert field in result["error"]["message"]
        assert account_row(connection, shop_id, customer).revision == 0
        assert ledger_rows(connection, shop_id) == []
        recorded = connection.execute(
            select(rejected_messages).order_by(rejected_messages.c.id.desc()).limit(1)
        ).one()
        assert (recorded.code, recorded.result) == ("invalid_command", result)

    def test_invalid_input_does_not_claim_its_command_id(self, shop_id: str, customer: str) -> None:
        command = adjustment(shop_id, customer, adjustment=0)
        assert adjust_points(command)["error"]["code"] == "invalid_command"

        fixed = adjust_points(command | {"adjustment": 5})

        assert fixed["status"] == "applied"

    @pytest.mark.parametrize("payload", [[1, 2], "adjust", None, 42])
    def test_a_non_object_argument_is_invalid(self, connection: Connection, payload: Any) -> None:
        result = adjust_points(payload)

        assert result["error"]["code"] == "invalid_command"
        assert result["error"]["details"]["errors"] == [
            {"field": "command", "reason": "must be a JSON object"}
        ]

    def test_a_call_with_other_than_one_argument_is_invalid(self, shop_id: str) -> None:
        result = adjust_points({"command_id": "a"}, {"command_id": "b"})

        assert result["error"]["code"] == "invalid_command"
        assert "exactly one argument" in result["error"]["message"]

    def test_the_command_may_come_as_a_keyword_argument(self, shop_id: str, customer: str) -> None:
        result = adjust_points(command=adjustment(shop_id, customer, adjustment=5))

        assert result["status"] == "applied"


class TestInfrastructureFaults:
    def test_an_unreachable_database_is_retried_then_the_message_requeued_recording_nothing(
        self, connection: Connection, shop_id: str, customer: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
        monkeypatch.setattr("tasks.commands.database", unreachable)
        monkeypatch.setenv("LOYALTY_REDELIVERY_BOUND", "20")  # retries in place for 2 s

        started = time.monotonic()
        with pytest.raises(Reject) as rejected:
            adjust_points(adjustment(shop_id, customer, adjustment=5))

        assert rejected.value.requeue is True
        assert isinstance(rejected.value.reason, OperationalError)
        assert 1.5 <= time.monotonic() - started < 10
        assert count(connection, rejected_messages, shop_id) == 0
        assert count(connection, processed_commands, shop_id) == 1  # the customer upsert
        assert count(connection, ledger_entries, shop_id) == 0

    def test_a_fault_that_clears_is_retried_in_place_and_applied_once(
        self, connection: Connection, shop_id: str, customer: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        faults = iter([OperationalError("SELECT 1", {}, Exception("connection lost"))] * 2)
        real = command_engine.apply_batch

        def flaky(uow: UnitOfWork, items: list[ParsedItem]) -> list[dict[str, object]]:
            fault = next(faults, None)
            if fault is not None:
                raise fault
            return real(uow, items)

        monkeypatch.setattr("models.services.command_engine.apply_batch", flaky)

        result = adjust_points(adjustment(shop_id, customer, adjustment=5))

        assert result["status"] == "applied"
        assert count(connection, ledger_entries, shop_id) == 1
