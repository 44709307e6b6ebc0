"""Running one side effect: a transient fault postpones its outbox row, the last attempt or a
permanent fault buries it, and a finished row is left alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, select

from models.persistence.tables import dead_letters, outbox
from models.persistence.unit_of_work import UnitOfWork
from models.services.side_effects import GiveUp, RetryPolicy, TryAgain, attempt
from tests.support.factories import create_shop


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 2
    backoff_base: float = 1.0
    backoff_cap: float = 300.0


def policy() -> RetryPolicy:
    return Policy()


@pytest.fixture
def outbox_id(uow: UnitOfWork, shop_id: str) -> int:
    create_shop(uow, shop_id)
    with uow:
        (entry,) = uow.outbox.owe(
            ["loyalty.send_points_earned_email"],
            shop_id=shop_id,
            account_id=None,
            transaction_id=None,
            revision=None,
            now=datetime.now(UTC),
        )
        uow.commit()
    return entry.id


def row(connection: Connection, outbox_id: int) -> Any:
    return connection.execute(select(outbox).where(outbox.c.id == outbox_id)).one()


def failing(fault: Exception) -> Any:
    def work(_: int) -> str:
        raise fault

    return work


def test_a_transient_fault_counts_an_attempt_and_postpones_the_row(
    uow: UnitOfWork, connection: Connection, outbox_id: int
) -> None:
    outcome = attempt(lambda: uow, outbox_id, failing(TryAgain("busy", retry_after=30)), policy)

    postponed = row(connection, outbox_id)
    assert outcome == "retry in 30.0 s: busy"
    assert (postponed.attempts, postponed.last_error) == (1, "busy")
    assert postponed.next_attempt_at is not None
    assert postponed.completed_at is None


def test_a_wait_that_is_no_failure_counts_no_attempt(
    uow: UnitOfWork, connection: Connection, outbox_id: int
) -> None:
    fault = TryAgain("rate limited", retry_after=7, counts=False)

    outcome = attempt(lambda: uow, outbox_id, failing(fault), policy)

    assert outcome == "retry in 7.0 s: rate limited"
    assert row(connection, outbox_id).attempts == 0


def test_the_last_attempt_buries_the_row(
    uow: UnitOfWork, connection: Connection, outbox_id: int
) -> None:
    outcomes = [
        attempt(lambda: uow, outbox_id, failing(TryAgain("busy")), policy) for _ in range(3)
    ]

    assert outcomes[1:] == ["dead", "already done"]
    assert row(connection, outbox_id).outcome == "dead"
    letter = connection.execute(
        select(dead_letters).where(dead_letters.c.outbox_id == outbox_id)
    ).one()
    assert (letter.error, letter.attempts) == ("busy", 2)


def test_a_permanent_fault_buries_the_row_at_once(
    uow: UnitOfWork, connection: Connection, outbox_id: int
) -> None:
    outcome = attempt(lambda: uow, outbox_id, failing(GiveUp("bad key")), policy)

    assert outcome == "dead"
    assert row(connection, outbox_id).outcome == "dead"
