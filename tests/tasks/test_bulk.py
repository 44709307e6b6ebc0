"""The one planner, three ways in: a bulk chunk (``loyalty.adjust_points_bulk``) and a worker's
live micro-batches must do exactly what the same commands do one at a time — results, accounts,
audit trail, idempotency records, rejections and owed side effects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from models.domain.names import RECALCULATE_TIER, SEND_POINTS_EARNED_EMAIL, sync_task_name
from models.persistence.tables import (
    accounts,
    ledger_entries,
    outbox,
    processed_commands,
    rejected_messages,
)
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tasks.bulk import adjust_points_bulk
from tasks.commands import apply_requests
from tests.support.batches import as_request, stored_result
from tests.support.factories import create_shop
from workers.app import app

CUSTOMERS = ("c0", "c1", "c2", "c3")
COMMAND_IDS = tuple(f"cmd-{n}" for n in range(8))
MISSING_SHOP = "{shop}-missing"
ACCOUNT_COLUMNS = (
    "customer_id", "email", "phone", "first_name", "excluded", "balance", "lifetime", "earned",
    "redeemed", "adjusted", "revision",
)  # fmt: skip
LEDGER_COLUMNS = (
    "command_id", "requested", "applied", "balance_before", "balance_after", "lifetime_before",
    "lifetime_after", "note", "source", "actor",
)  # fmt: skip


def adjust_op() -> st.SearchStrategy[dict[str, Any]]:
    amount = st.one_of(
        st.fixed_dictionaries({"adjustment": st.integers(-300, 300).filter(bool)}),
        st.fixed_dictionaries({"balance": st.integers(0, 400)}),
        st.fixed_dictionaries(
            {"amount": st.integers(-50, 500).filter(bool), "balance": st.integers(0, 400)}
        ),
    )
    options = st.fixed_dictionaries(
        {},
        optional={
            "on_insufficient_points": st.sampled_from(["floor", "reject"]),
            "expected_revision": st.integers(0, 3),
            "update_lifetime_points": st.booleans(),
            "lifetime_points": st.integers(0, 2000),
            "send_email": st.booleans(),
            "note": st.sampled_from(["Goodwill", "  padded  ", "Migrated"]),
        },
    )
    return st.builds(
        lambda customer, command_id, amount, options: {
            "command_id": command_id,
            "shop_id": "{shop}",
            "customer_id": customer,
            **amount,
            **options,
        },
        st.sampled_from(CUSTOMERS),
        st.sampled_from(COMMAND_IDS),
        amount,
        options,
    )


def upsert_op() -> st.SearchStrategy[dict[str, Any]]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "email": st.sampled_from(["ada@example.com", "bob@example.org"]),
            "excluded": st.booleans(),
            "first_name": st.sampled_from(["Ada", "Bob"]),
        },
    )
    return st.builds(
        lambda customer, command_id, fields: {
            "upsert_customer": {
                "command_id": command_id,
                "shop_id": "{shop}",
                "customer_id": customer,
                **fields,
            }
        },
        st.sampled_from(CUSTOMERS),
        st.sampled_from(COMMAND_IDS),
        fields,
    )


def odd_op() -> st.SearchStrategy[Any]:
    """Invalid commands and commands for a shop that does not exist."""
    return st.sampled_from(
        [
            {"command_id": "bad-1", "shop_id": "{shop}", "customer_id": "c0", "adjustment": 0},
            {"command_id": "bad-2", "shop_id": "{shop}", "customer_id": "c0", "points": 5},
            {"shop_id": "{shop}", "customer_id": "c0", "adjustment": "5"},
            "not a command",
            {"upsert_customer": {"command_id": "bad-3", "shop_id": "{shop}", "email": "x"}},
            {
                "command_id": "elsewhere",
                "shop_id": MISSING_SHOP,
                "customer_id": "c0",
                "adjustment": 5,
            },
            {"upsert_customer": {"command_id": "e2", "shop_id": MISSING_SHOP, "customer_id": "c1"}},
        ]
    )


operations = st.lists(
    st.one_of(adjust_op(), adjust_op(), upsert_op(), odd_op()), min_size=1, max_size=25
)


def for_shop(value: Any, shop_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{shop}", shop_id)
    if isinstance(value, dict):
        return {key: for_shop(item, shop_id) for key, item in value.items()}
    return value


def prepare_shop(uow: UnitOfWork, shop_id: str, existing: list[str]) -> None:
    create_shop(uow, shop_id)
    with uow:
        uow.tiers.set(shop_id, "Gold", 500)
        uow.integrations.enable(shop_id, "klaviyo", "token", "…1234", datetime.now(UTC))
        uow.commit()
    for customer in existing:
        command_engine.upsert_customer(
            uow,
            {
                "command_id": f"setup-{customer}",
                "shop_id": shop_id,
                "customer_id": customer,
                "email": f"{customer}@example.com",
            },
        )


def one_at_a_time(uow: UnitOfWork, item: Any) -> dict[str, Any]:
    if isinstance(item, dict) and set(item) == {"upsert_customer"}:
        return command_engine.upsert_customer(uow, item["upsert_customer"])
    return command_engine.adjust_points(uow, item)


def in_chunks(uow: UnitOfWork, items: list[Any], sizes: list[int]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    start = 0
    for size in [*sizes, len(items)]:
        chunk = items[start : start + size]
        if chunk:
            results += command_engine.adjust_points_bulk(uow, chunk, max_commands=100)
        start += len(chunk)
        if start >= len(items):
            break
    return results


def in_live_batches(items: list[Any], sizes: list[int]) -> list[dict[str, Any]]:
    """As the worker applies live messages: batches of requests, results in the backend."""
    requests = [as_request(item) for item in items]
    start = 0
    for size in [*sizes, len(requests)]:
        batch = requests[start : start + size]
        if batch:
            assert apply_requests(app, batch)["requeue"] == []
        start += len(batch)
        if start >= len(requests):
            break
    return [stored_result(request.id) for request in requests]


def normalized(value: Any, shop_id: str, transactions: dict[str, int]) -> Any:
    """Shop ids, transaction ids and timestamps differ between the two runs by construction."""
    if isinstance(value, dict):
        return {
            key: normalized(item, shop_id, transactions)
            for key, item in value.items()
            if key not in ("last_activity_at",)
        }
    if isinstance(value, list | tuple):
        return [normalized(item, shop_id, transactions) for item in value]
    if isinstance(value, str):
        if value in transactions:
            return f"tx-{transactions[value]}"
        return value.replace(shop_id, "{shop}")
    return value


def observed(connection: Connection, shop_id: str) -> dict[str, Any]:
    """What a shop's commands left in the database, in a comparable form."""
    ledger = list(
        connection.execute(
            select(ledger_entries).where(ledger_entries.c.shop_id == shop_id).order_by("id")
        )
    )
    transactions = {str(row.transaction_id): n for n, row in enumerate(ledger)}
    account_rows = connection.execute(
        select(accounts).where(accounts.c.shop_id == shop_id).order_by(accounts.c.customer_id)
    )
    shops = (shop_id, MISSING_SHOP.format(shop=shop_id))
    processed = connection.execute(
        select(processed_commands)
        .where(processed_commands.c.shop_id.in_(shops))
        .order_by(processed_commands.c.shop_id, processed_commands.c.command_id)
    )
    rejected = connection.execute(
        select(rejected_messages.c.command_id, rejected_messages.c.code, rejected_messages.c.result)
        .where(
            rejected_messages.c.shop_id.in_(shops) | rejected_messages.c.payload.contains(shop_id)
        )
        .order_by(rejected_messages.c.id)
    )
    owed = connection.execute(
        select(outbox.c.task_name, outbox.c.transaction_id, outbox.c.revision)
        .where(outbox.c.shop_id == shop_id, outbox.c.transaction_id.is_not(None))
        .order_by(outbox.c.id)
    )
    view = {
        "accounts": [
            {name: getattr(row, name) for name in ACCOUNT_COLUMNS}
            | {"active": row.last_activity_at is not None}
            for row in account_rows
        ],
        "ledger": [{name: getattr(row, name) for name in LEDGER_COLUMNS} for row in ledger],
        "processed": [
            (row.command_id, row.command_type, row.status, row.result) for row in processed
        ],
        "rejected": [(row.command_id, row.code, row.result) for row in rejected],
        "owed": sorted(
            (transactions[str(row.transaction_id)], row.task_name, row.revision) for row in owed
        ),
    }
    return normalized(view, shop_id, transactions) | {"transactions": transactions}


# Every example works in two shops of its own, so sharing the rolled-back transaction is safe.
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    existing=st.lists(st.sampled_from(CUSTOMERS), unique=True),
    items=operations,
    chunk_sizes=st.lists(st.integers(1, 10), max_size=6),
)
def test_chunks_and_live_batches_do_what_the_same_commands_do_one_at_a_time(
    uow: UnitOfWork,
    connection: Connection,
    existing: list[str],
    items: list[Any],
    chunk_sizes: list[int],
) -> None:
    single_shop, bulk_shop, live_shop = (f"shop-{uuid.uuid4().hex[:10]}" for _ in range(3))
    for shop_id in (single_shop, bulk_shop, live_shop):
        prepare_shop(uow, shop_id, existing)

    single_results = [one_at_a_time(uow, for_shop(item, single_shop)) for item in items]
    bulk_results = in_chunks(uow, [for_shop(item, bulk_shop) for item in items], chunk_sizes)
    live_results = in_live_batches([for_shop(item, live_shop) for item in items], chunk_sizes)

    single = observed(connection, single_shop)
    expected = normalized(single_results, single_shop, single.pop("transactions"))
    for shop_id, results in ((bulk_shop, bulk_results), (live_shop, live_results)):
        seen = observed(connection, shop_id)
        assert normalized(results, shop_id, seen.pop("transactions")) == expected
        assert seen == single


class TestTheTask:
    @pytest.fixture
    def shop(self, uow: UnitOfWork, shop_id: str) -> str:
        prepare_shop(uow, shop_id, ["c0"])
        return shop_id

    def test_creates_customers_and_sets_their_balances_with_one_result_each(
        self, connection: Connection, shop: str
    ) -> None:
        results = adjust_points_bulk(
            [
                {"upsert_customer": {"command_id": "u1", "shop_id": shop, "customer_id": "new"}},
                {"command_id": "a1", "shop_id": shop, "customer_id": "new", "balance": 700},
                {"command_id": "a2", "shop_id": shop, "customer_id": "c0", "adjustment": 50},
            ]
        )

        assert [r["status"] for r in results] == ["applied"] * 3
        assert results[0]["created"] is True
        assert results[1]["account"]["points"]["balance"] == 700
        assert results[2]["data"]["attributes"]["points_after"] == 50
        owed = connection.execute(
            select(outbox.c.task_name).where(
                outbox.c.shop_id == shop, outbox.c.transaction_id.is_not(None)
            )
        ).scalars()
        assert sorted(owed) == sorted(
            [RECALCULATE_TIER, sync_task_name("klaviyo")] * 2 + [SEND_POINTS_EARNED_EMAIL]
        )

    def test_a_rejection_does_not_fail_the_chunk(self, shop: str) -> None:
        results = adjust_points_bulk(
            [
                {"command_id": "r1", "shop_id": shop, "customer_id": "nobody", "adjustment": 5},
                {"command_id": "r2", "shop_id": shop, "customer_id": "c0", "adjustment": 5},
            ]
        )

        assert results[0]["error"]["code"] == "customer_not_found"
        assert results[1]["status"] == "applied"

    @pytest.mark.parametrize(
        ("args", "kwargs"),
        [(("not a list",), {}), (([],), {}), ((), {"command": []}), (([], []), {})],
    )
    def test_a_call_that_is_not_one_list_of_commands_is_recorded_as_invalid(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        results = adjust_points_bulk(*args, **kwargs)

        assert len(results) == 1
        assert results[0]["error"]["code"] == "invalid_command"
        assert results[0]["error"]["details"]["errors"][0]["field"] == "commands"

    def test_a_chunk_larger_than_the_limit_is_refused_whole(
        self, connection: Connection, shop: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOYALTY_BULK_MAX_COMMANDS", "2")
        commands = [
            {"command_id": f"x{n}", "shop_id": shop, "customer_id": "c0", "adjustment": 1}
            for n in range(3)
        ]

        results = adjust_points_bulk(commands)

        assert results[0]["error"]["details"]["errors"] == [
            {"field": "commands", "reason": "must be a list of 1 to 2 commands"}
        ]
        ledger = connection.execute(select(ledger_entries).where(ledger_entries.c.shop_id == shop))
        assert ledger.all() == []
