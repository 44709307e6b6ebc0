"""The unit of work's commits, against PostgreSQL committing for real."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from models.persistence.tables import accounts, email_deliveries
from models.persistence.unit_of_work import UnitOfWork
from tests.support.commit_hooks import commit_hook
from tests.support.factories import create_customer, create_shop
from workers.db import Database


@pytest.fixture
def account(committed: Database) -> tuple[str, int]:
    shop_id = f"uow-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    create_customer(committed.unit_of_work(), shop_id, "ada", email="ada@example.com")
    with committed.engine.connect() as connection:
        account_id = connection.execute(
            select(accounts.c.id).where(accounts.c.shop_id == shop_id)
        ).scalar_one()
    return shop_id, account_id


def record(uow: UnitOfWork, shop_id: str, account_id: int, transaction_id: uuid.UUID) -> None:
    uow.deliveries.record_hand_over(
        transaction_id=transaction_id,
        shop_id=shop_id,
        account_id=account_id,
        recipient="ada@example.com",
        message_id=f"<{transaction_id}@test>",
        now=datetime.now(UTC),
    )


def stored(committed: Database, transaction_id: uuid.UUID) -> str | None:
    with committed.engine.connect() as connection:
        return connection.execute(
            select(email_deliveries.c.status).where(
                email_deliveries.c.transaction_id == transaction_id
            )
        ).scalar_one_or_none()


def test_commit_overlapping_runs_the_action_before_the_commit_is_confirmed(
    committed: Database, account: tuple[str, int]
) -> None:
    """The COMMIT waits on a lock only the action releases: waiting for the reply before
    running the action would time out."""
    shop_id, account_id = account
    transaction_id = uuid.uuid4()
    seen_by_the_action: list[str | None] = []
    with commit_hook(committed.engine, shop_id, "wait"), committed.engine.connect() as holder:
        holder.execute(select(func.pg_advisory_lock(func.hashtext(shop_id))))

        def action() -> None:
            seen_by_the_action.append(stored(committed, transaction_id))
            holder.execute(select(func.pg_advisory_unlock(func.hashtext(shop_id))))

        with committed.unit_of_work() as uow:
            record(uow, shop_id, account_id, transaction_id)
            uow.commit_overlapping(action)

        assert seen_by_the_action == [None], "the action ran while the COMMIT was unconfirmed"
        assert stored(committed, transaction_id) == "sending"


def test_commit_overlapping_raises_a_failed_commit_after_the_action_ran(
    committed: Database, account: tuple[str, int]
) -> None:
    shop_id, account_id = account
    transaction_id = uuid.uuid4()
    ran: list[bool] = []
    with commit_hook(committed.engine, shop_id, "fail-once"):
        with committed.unit_of_work() as uow:
            record(uow, shop_id, account_id, transaction_id)
            with pytest.raises(OperationalError, match="COMMIT"):
                uow.commit_overlapping(lambda: ran.append(True))

        assert ran == [True]
        assert stored(committed, transaction_id) is None
        with committed.unit_of_work() as uow:  # the session and its connection are usable again
            record(uow, shop_id, account_id, transaction_id)
            uow.commit_overlapping(lambda: ran.append(True))
    assert stored(committed, transaction_id) == "sending"


def test_commit_overlapping_inside_an_outer_transaction_only_releases_its_savepoint(
    uow: UnitOfWork, connection: Connection
) -> None:
    ran: list[bool] = []
    with uow:
        uow.commit_overlapping(lambda: ran.append(True))
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    assert ran == [True]
    assert driver.info.transaction_status == TransactionStatus.INTRANS
