"""The outbox store: owed only by committed transactions, and claimed by one relay at a time.
Committed data, each test in its own shop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from models.domain.side_effects import OutboxEntry
from models.persistence.tables import outbox
from models.services import command_engine
from tests.support.factories import adjustment
from tests.support.outbox import outbox_rows, recording, shop_owing_side_effects
from workers.db import Database


@pytest.fixture
def shop(committed: Database) -> str:
    return shop_owing_side_effects(committed)


def test_a_rolled_back_transaction_owes_nothing(committed: Database, shop: str) -> None:
    uow, published = recording(committed)
    with uow:
        uow.owe(
            uow.outbox.owe(
                ["loyalty.recalculate_tier"],
                shop_id=shop,
                account_id=None,
                transaction_id=None,
                revision=None,
                now=datetime.now(UTC),
            )
        )
        # no commit: leaving the block rolls back

    assert published == []
    assert outbox_rows(committed, shop) == []


def test_two_relays_never_claim_the_same_row(committed: Database, shop: str) -> None:
    with committed.engine.begin() as connection:  # rows other tests left pending: not ours
        connection.execute(
            update(outbox)
            .where(outbox.c.shop_id != shop, outbox.c.completed_at.is_(None))
            .values(completed_at=datetime.now(UTC), outcome="set aside by the relay test")
        )
    for amount in range(1, 11):
        command_engine.adjust_points(
            committed.unit_of_work(), adjustment(shop, "ada", adjustment=amount)
        )
    claimed: list[list[OutboxEntry]] = [[], []]
    both_claimed = threading.Barrier(2)

    def relay(index: int) -> None:
        with committed.unit_of_work() as uow:
            claimed[index] = uow.outbox.claim_for_relay(
                datetime.now(UTC) + timedelta(minutes=1),
                grace=timedelta(0),
                sync_delay=timedelta(0),
                redispatch_after=timedelta(hours=1),
                limit=12,
            )
            both_claimed.wait()  # hold the locks until the other has claimed too

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ours = {row.id for row in outbox_rows(committed, shop)}
    first, second = ({e.id for e in batch} & ours for batch in claimed)
    assert len(ours) == 20
    assert first.isdisjoint(second)
    assert len(first | second) == 20
    assert first
    assert second
