"""The batch read and write keep their statement count: the command engine's throughput rests on
a few statements per shop, whatever the batch's size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event

from models.domain import parsing, planner
from models.domain.commands import ADJUST_POINTS, REVERSE_ADJUSTMENT, UPSERT_CUSTOMER
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from models.services.expiry import set_policy
from tests.support.factories import adjustment, create_customer, create_shop, reversal


@pytest.fixture
def shop(uow: UnitOfWork, shop_id: str) -> str:
    create_shop(uow, shop_id)
    with uow:
        uow.tiers.set(shop_id, "Gold", 100)
        uow.integrations.enable(shop_id, "klaviyo", "token", "…1234", datetime.now(UTC))
        uow.commit()
    for customer in ("ada", "bob"):
        create_customer(uow, shop_id, customer, email=f"{customer}@example.com")
    return shop_id


@contextmanager
def statements(connection: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", count)


def apply(uow: UnitOfWork, connection: Connection, items: list[parsing.ParsedItem]) -> list[int]:
    """Statements of the read and of the write."""
    with uow:
        with statements(connection) as read:
            state = uow.batches.read(parsing.keys_to_read(items), lock=True)
        plan = planner.plan_batch(items, state, datetime.now(UTC))
        with statements(connection) as written:
            uow.owe(uow.batches.write(plan))
        uow.commit()
    return [len(read), len(written)]


def test_a_batch_of_adjustments_is_read_in_three_statements_and_written_in_four(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    items = [
        parsing.parse_command_of(ADJUST_POINTS, adjustment(shop, customer, adjustment=150))
        for customer in ("ada", "bob", "ada")
    ]

    # shops, accounts, stored results; accounts updated, ledger, stored results, outbox
    assert apply(uow, connection, items) == [3, 4]


def test_new_customers_are_inserted_in_one_statement(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    items = [
        parsing.parse_command_of(
            UPSERT_CUSTOMER, adjustment(shop, customer, first_name=customer.title())
        )
        for customer in ("cy", "dee", "ada")
    ]

    # shops, accounts, stored results; accounts inserted, accounts updated, stored results, and
    # the outbox: a changed name owes the shop's Klaviyo sync
    assert apply(uow, connection, items) == [3, 4]


def test_the_entries_a_batch_reverses_are_read_in_one_more_statement(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    granted = [
        command_engine.adjust_points(uow, adjustment(shop, customer, adjustment=150))
        for customer in ("ada", "bob")
    ]
    items = [
        parsing.parse_command_of(
            REVERSE_ADJUSTMENT,
            reversal(
                shop,
                result["data"]["attributes"]["customer_id"],
                result["transaction_id"],
                points=50,
            ),
        )
        for result in (*granted, granted[0])
    ]

    # shops, accounts, stored results, reversed entries; as for adjustments
    assert apply(uow, connection, items) == [4, 4]


def test_a_shop_with_an_expiry_policy_reads_its_lots_and_writes_the_changed_ones(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    with uow:
        set_policy(uow, shop, expire_after_days=365, reminder_days=14)
        uow.commit()
    credits = [
        parsing.parse_command_of(ADJUST_POINTS, adjustment(shop, customer, adjustment=150))
        for customer in ("ada", "bob")
    ]
    debits = [
        parsing.parse_command_of(ADJUST_POINTS, adjustment(shop, customer, adjustment=-150))
        for customer in ("ada", "bob")
    ]

    # shops, accounts, stored results, lots; as for adjustments, and the new lots
    assert apply(uow, connection, credits) == [4, 5]
    # ...and the lots used up, deleted
    assert apply(uow, connection, debits) == [4, 5]
