"""Tier recalculation in-process against PostgreSQL, each test in a rolled-back transaction."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, select, update

from models.domain.names import RECALCULATE_SHOP_TIERS, RECALCULATE_TIER
from models.domain.side_effects import OutboxEntry
from models.persistence.tables import accounts, outbox, tier_changes, tiers
from models.persistence.unit_of_work import UnitOfWork
from tasks.live_commands import adjust_points
from tasks.tiers import recalculate_shop_tiers, recalculate_tier
from tests.support.factories import account_row, adjustment, create_customer, create_shop
from workers.db import Database


@pytest.fixture
def shop(uow: UnitOfWork, shop_id: str) -> str:
    create_shop(uow, shop_id)
    set_tiers(uow, shop_id, {"Silver": 100, "Gold": 500})
    create_customer(uow, shop_id, "ada", email="ada@example.com")
    return shop_id


def set_tiers(uow: UnitOfWork, shop_id: str, thresholds: dict[str, int]) -> None:
    with uow:
        for name, threshold in thresholds.items():
            uow.tiers.set(shop_id, name, threshold)
        uow.commit()


def owed(connection: Connection, shop_id: str, task_name: str) -> list[Any]:
    return list(
        connection.execute(
            select(outbox)
            .where(outbox.c.shop_id == shop_id, outbox.c.task_name == task_name)
            .order_by(outbox.c.id)
        )
    )


def owe_shop_recalculation(uow: UnitOfWork, shop_id: str) -> OutboxEntry:
    (entry,) = uow.outbox.owe(
        [RECALCULATE_SHOP_TIERS],
        shop_id=shop_id,
        account_id=None,
        transaction_id=None,
        revision=None,
        now=datetime.now(UTC),
    )
    return entry


def changes(connection: Connection, shop_id: str) -> list[tuple[Any, ...]]:
    return [
        (row.from_tier, row.to_tier, row.lifetime_points, row.cause)
        for row in connection.execute(
            select(tier_changes)
            .where(tier_changes.c.shop_id == shop_id)
            .order_by(tier_changes.c.id)
        )
    ]


def test_an_adjustment_owes_a_recalculation_that_records_the_change(
    connection: Connection, shop: str
) -> None:
    result = adjust_points(adjustment(shop, "ada", adjustment=600))
    (row,) = owed(connection, shop, RECALCULATE_TIER)

    assert result["account"]["tier"] is None  # the tier held when the adjustment committed
    assert recalculate_tier(row.id) == "tier changed"

    assert account_row(connection, shop, "ada").tier_id is not None
    assert changes(connection, shop) == [(None, "Gold", 600, "adjustment")]
    cause = connection.execute(
        select(tier_changes.c.transaction_id).where(tier_changes.c.shop_id == shop)
    ).scalar_one()
    assert str(cause) == result["transaction_id"]
    assert owed(connection, shop, RECALCULATE_TIER)[0].outcome == "tier changed"


def test_a_shop_without_tiers_owes_no_recalculation(
    uow: UnitOfWork, connection: Connection, shop_id: str
) -> None:
    create_shop(uow, shop_id)
    create_customer(uow, shop_id, "ada")

    adjust_points(adjustment(shop_id, "ada", adjustment=600))

    assert owed(connection, shop_id, RECALCULATE_TIER) == []


def test_running_a_recalculation_twice_changes_nothing_more(
    connection: Connection, shop: str
) -> None:
    adjust_points(adjustment(shop, "ada", adjustment=150))
    (row,) = owed(connection, shop, RECALCULATE_TIER)

    recalculate_tier(row.id)
    again = recalculate_tier(row.id)

    assert again == "already done"
    assert changes(connection, shop) == [(None, "Silver", 150, "adjustment")]


def test_the_next_adjustment_shows_the_recalculated_tier(connection: Connection, shop: str) -> None:
    adjust_points(adjustment(shop, "ada", adjustment=550))
    recalculate_tier(owed(connection, shop, RECALCULATE_TIER)[0].id)

    result = adjust_points(adjustment(shop, "ada", adjustment=1))

    assert result["account"]["tier"] == {"name": "Gold", "threshold": 500}


def test_editing_tiers_recalculates_the_whole_shop(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    create_customer(uow, shop, "bob")
    adjust_points(adjustment(shop, "ada", adjustment=300))
    adjust_points(adjustment(shop, "bob", adjustment=50))
    for row in owed(connection, shop, RECALCULATE_TIER):
        recalculate_tier(row.id)
    with uow:
        uow.tiers.set(shop, "Bronze", 10)
        uow.tiers.delete(shop, "Silver")
        entry = owe_shop_recalculation(uow, shop)
        uow.commit()

    assert recalculate_shop_tiers(entry.id) == "2 tiers changed"
    assert changes(connection, shop) == [
        (None, "Silver", 300, "adjustment"),
        (None, "Bronze", 300, "tiers_changed"),
        (None, "Bronze", 50, "tiers_changed"),
    ]


def test_a_shop_too_big_for_one_run_is_finished_by_the_next_runs_from_where_they_stopped(
    uow: UnitOfWork, connection: Connection, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("bob", "cy"):
        create_customer(uow, shop, name)
    for name in ("ada", "bob", "cy"):
        adjust_points(adjustment(shop, name, adjustment=300))  # Silver, not yet recalculated
    with uow:
        entry = owe_shop_recalculation(uow, shop)
        uow.commit()
    monkeypatch.setattr("models.services.tiers.SHOP_BATCH", 1)
    no_time = SimpleNamespace(redelivery=SimpleNamespace(fault_retry_window=0))
    monkeypatch.setattr("tasks.tiers.settings", lambda: no_time)

    outcomes = []
    while (outcome := recalculate_shop_tiers(entry.id)) != "already done":
        row = owed(connection, shop, RECALCULATE_SHOP_TIERS)[0]
        assert row.completed_at is not None or row.next_attempt_at is not None
        outcomes.append(outcome)
        assert len(outcomes) <= 4, outcomes

    assert [o.split(";")[0] for o in outcomes] == ["1 tiers changed"] * 3 + ["0 tiers changed"]
    assert all("continuing after account" in o for o in outcomes[:3])
    assert [c[1] for c in changes(connection, shop) if c[3] == "tiers_changed"] == ["Silver"] * 3


def test_a_tier_change_owes_a_sync_to_each_enabled_provider(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    with uow:
        uow.integrations.enable(shop, "klaviyo", "token", "…1234", datetime.now(UTC))
        uow.commit()
    adjust_points(adjustment(shop, "ada", adjustment=120))
    syncs_for_adjustment = owed(connection, shop, "loyalty.sync_klaviyo")

    recalculate_tier(owed(connection, shop, RECALCULATE_TIER)[0].id)

    syncs = owed(connection, shop, "loyalty.sync_klaviyo")
    assert len(syncs_for_adjustment) == 1
    assert len(syncs) == 2
    assert syncs[1].transaction_id is None
    assert syncs[1].revision == syncs[0].revision == 1


def test_a_recalculation_that_waited_on_the_account_records_the_tier_it_found_after(
    committed: Database,
) -> None:
    """Another transaction holds the account while it moves it to Silver; the recalculation
    that waited for it must record Silver -> Gold, not a stale None -> Gold."""
    shop_id = f"tiers-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    set_tiers(committed.unit_of_work(), shop_id, {"Silver": 100, "Gold": 500})
    create_customer(committed.unit_of_work(), shop_id, "ada")
    adjust_points(adjustment(shop_id, "ada", adjustment=600))
    with committed.engine.connect() as reader:
        (row,) = owed(reader, shop_id, RECALCULATE_TIER)
        ada = account_row(reader, shop_id, "ada")
        silver = reader.execute(
            select(tiers.c.id).where(tiers.c.shop_id == shop_id, tiers.c.name == "Silver")
        ).scalar_one()
    outcome: list[str] = []
    with committed.engine.connect() as other:
        other.execute(update(accounts).where(accounts.c.id == ada.id).values(tier_id=silver))
        waiting = threading.Thread(target=lambda: outcome.append(recalculate_tier(row.id)))
        waiting.start()
        time.sleep(0.5)  # the recalculation is now waiting on the account's lock
        other.commit()
        waiting.join(timeout=30)

    assert outcome == ["tier changed"]
    with committed.engine.connect() as reader:
        assert changes(reader, shop_id) == [("Silver", "Gold", 600, "adjustment")]
