"""``loyalty.reverse_adjustment`` run in-process against PostgreSQL: each test in a rolled-back
transaction, except the race, which needs two real transactions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, select

from models.domain.names import RECALCULATE_TIER, sync_task_name
from models.persistence.tables import outbox
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tasks.bulk import adjust_points_bulk
from tasks.live_commands import LIVE_COMMAND_TASKS, adjust_points
from tests.support.factories import (
    account_row,
    adjustment,
    create_customer,
    create_shop,
    ledger_rows,
    reversal,
)
from tests.tasks.test_concurrency import in_threads
from workers.db import Database

reverse_adjustment = LIVE_COMMAND_TASKS["reverse_adjustment"]


@pytest.fixture
def shop(uow: UnitOfWork, shop_id: str) -> str:
    create_shop(uow, shop_id)
    with uow:
        uow.tiers.set(shop_id, "Gold", 1_000)
        uow.integrations.enable(shop_id, "klaviyo", "token", "…1234", datetime.now(UTC))
        uow.commit()
    create_customer(uow, shop_id, "ada", email="ada@example.com")
    create_customer(uow, shop_id, "bob", email="bob@example.com")
    return shop_id


def granted(shop: str, points: int, customer: str = "ada", **fields: Any) -> str:
    result = adjust_points(adjustment(shop, customer, adjustment=points, **fields))
    assert result["status"] == "applied", result
    transaction_id: str = result["transaction_id"]
    return transaction_id


def error_code(result: dict[str, Any]) -> str:
    assert result["status"] == "rejected", result
    code: str = result["error"]["code"]
    return code


class TestReversing:
    def test_partial_then_full_reversal_claws_back_exactly_what_was_granted(
        self, connection: Connection, shop: str
    ) -> None:
        order = granted(shop, 500, note="Order #1001")
        granted(shop, 200)

        partial = reverse_adjustment(reversal(shop, "ada", order, points=150, note="Refund 1/2"))
        rest = reverse_adjustment(reversal(shop, "ada", order, note="Refund 2/2"))

        assert partial["data"] == {
            "type": "points_reversal",
            "id": partial["transaction_id"],
            "attributes": {
                "customer_id": "ada",
                "reverses_transaction_id": order,
                "adjustment": -150,
                "applied_adjustment": -150,
                "points_before": 700,
                "points_after": 550,
                "current_points": 550,
                "remaining_reversible": 350,
                "note": "Refund 1/2",
            },
        }
        assert rest["data"]["attributes"]["applied_adjustment"] == -350
        assert rest["data"]["attributes"]["remaining_reversible"] == 0
        assert rest["account"]["points"]["balance"] == 200
        assert rest["account"]["lifetime_points"] == 200
        account = account_row(connection, shop, "ada")
        assert (account.balance, account.lifetime, account.revision) == (200, 200, 4)
        entries = ledger_rows(connection, shop)
        assert [(e.kind, e.applied) for e in entries if e.account_id == account.id][-2:] == [
            ("reverse", -150),
            ("reverse", -350),
        ]
        assert {str(e.reverses_transaction_id) for e in entries if e.kind == "reverse"} == {order}
        assert sum(e.applied for e in entries if e.account_id == account.id) == account.balance

    def test_a_deduction_is_credited_back(self, connection: Connection, shop: str) -> None:
        granted(shop, 300)
        redeemed = granted(shop, -120, update_lifetime_points=False)

        result = reverse_adjustment(reversal(shop, "ada", redeemed))

        assert result["data"]["attributes"]["applied_adjustment"] == 120
        assert result["account"]["points"]["balance"] == 300
        assert result["account"]["lifetime_points"] == 300

    def test_over_reversal_is_refused_and_changes_nothing(
        self, connection: Connection, shop: str
    ) -> None:
        order = granted(shop, 100)
        reverse_adjustment(reversal(shop, "ada", order, points=60))
        before = account_row(connection, shop, "ada")

        too_much = reverse_adjustment(reversal(shop, "ada", order, points=41))
        reverse_adjustment(reversal(shop, "ada", order))
        nothing_left = reverse_adjustment(reversal(shop, "ada", order))

        assert error_code(too_much) == "reversal_exceeds_remaining"
        assert too_much["error"]["http_status"] == 422
        assert too_much["error"]["details"]["remaining_reversible"] == 40
        assert error_code(nothing_left) == "nothing_to_reverse"
        assert nothing_left["error"]["http_status"] == 409
        assert account_row(connection, shop, "ada").balance == before.balance - 40

    def test_a_floored_claw_back_consumes_what_it_asked_for(
        self, connection: Connection, shop: str
    ) -> None:
        order = granted(shop, 100)
        granted(shop, -80)

        floored = reverse_adjustment(reversal(shop, "ada", order, points=50))
        refused = reverse_adjustment(
            reversal(shop, "ada", order, points=10, on_insufficient_points="reject")
        )

        attributes = floored["data"]["attributes"]
        assert (attributes["adjustment"], attributes["applied_adjustment"]) == (-50, -20)
        assert attributes["remaining_reversible"] == 50
        assert error_code(refused) == "insufficient_points"
        entry = ledger_rows(connection, shop)[-1]
        assert (entry.requested, entry.applied, entry.balance_after) == (-50, -20, 0)

    @pytest.mark.parametrize(
        ("whose", "code"),
        [("bob", "transaction_not_found"), ("nobody", "customer_not_found")],
    )
    def test_another_customers_transaction_is_not_found(
        self, shop: str, whose: str, code: str
    ) -> None:
        order = granted(shop, 100)

        assert error_code(reverse_adjustment(reversal(shop, whose, order))) == code

    def test_another_shops_transaction_is_not_found(self, uow: UnitOfWork, shop: str) -> None:
        other = f"other-{uuid.uuid4().hex[:8]}"
        create_shop(uow, other)
        create_customer(uow, other, "ada")
        order = granted(shop, 100)

        result = reverse_adjustment(reversal(other, "ada", order))

        assert error_code(result) == "transaction_not_found"
        assert result["error"]["http_status"] == 404

    def test_a_reversal_cannot_be_reversed(self, shop: str) -> None:
        reversed_ = reverse_adjustment(reversal(shop, "ada", granted(shop, 100)))

        result = reverse_adjustment(reversal(shop, "ada", reversed_["transaction_id"]))

        assert error_code(result) == "not_reversible"

    def test_the_same_command_again_returns_its_result_and_reverses_nothing_more(
        self, connection: Connection, shop: str
    ) -> None:
        command = reversal(shop, "ada", granted(shop, 100), points=30)

        first = reverse_adjustment(command)
        again = reverse_adjustment(command)
        conflict = reverse_adjustment({**command, "points": 31})

        assert again == first
        assert error_code(conflict) == "idempotency_conflict"
        assert account_row(connection, shop, "ada").balance == 70

    def test_it_owes_the_tier_and_the_syncs_but_no_email(
        self, connection: Connection, shop: str
    ) -> None:
        result = reverse_adjustment(reversal(shop, "ada", granted(shop, 100)))

        owed = connection.execute(
            select(outbox.c.task_name).where(
                outbox.c.transaction_id == uuid.UUID(result["transaction_id"])
            )
        ).scalars()
        assert sorted(owed) == sorted([RECALCULATE_TIER, sync_task_name("klaviyo")])

    def test_two_reversals_of_one_transaction_in_one_batch_share_what_remains(
        self, shop: str
    ) -> None:
        order = granted(shop, 100)

        results = adjust_points_bulk(
            [
                {"reverse_adjustment": reversal(shop, "ada", order, points=70)},
                {"reverse_adjustment": reversal(shop, "ada", order, points=70)},
                {"reverse_adjustment": reversal(shop, "ada", order)},
            ]
        )

        assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
        assert results[1]["error"]["details"]["remaining_reversible"] == 30
        assert results[2]["data"]["attributes"]["applied_adjustment"] == -30


def test_racing_reversals_of_one_transaction_never_reverse_more_than_it_applied(
    committed: Database,
) -> None:
    shop_id = f"race-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    create_customer(committed.unit_of_work(), shop_id, "hot")
    order = command_engine.adjust_points(
        committed.unit_of_work(), adjustment(shop_id, "hot", adjustment=100)
    )["transaction_id"]
    duplicate = reversal(shop_id, "hot", order, points=60)

    def send(index: int) -> list[dict[str, Any]]:
        commands = [duplicate, reversal(shop_id, "hot", order, points=60)]
        return [
            command_engine.reverse_adjustment(committed.unit_of_work(), command)
            for command in (commands if index == 0 else commands[::-1])
        ]

    first, second = in_threads(send)

    assert first[0] == second[1]  # the duplicate: one result, whoever applied it
    distinct = [first[0], first[1], second[0]]
    assert sorted(r["status"] for r in distinct) == ["applied", "rejected", "rejected"]
    assert {r["error"]["code"] for r in distinct if r["status"] == "rejected"} == {
        "reversal_exceeds_remaining"
    }
    with committed.engine.connect() as connection:
        balance = account_row(connection, shop_id, "hot").balance
        entries = ledger_rows(connection, shop_id)
    assert [(e.kind, e.applied) for e in entries] == [("adjust", 100), ("reverse", -60)]
    assert balance == 40
