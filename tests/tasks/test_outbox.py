"""The outbox: owed only by committed transactions, published after commit, and re-published by
the relay when that publish never happened. Committed data, each test in its own shop."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from celery import Celery
from sqlalchemy import update

from models.domain.clock import utc_now
from models.domain.side_effects import OutboxEntry
from models.persistence.tables import outbox
from models.services import command_engine
from tasks.outbox import relay_outbox
from tests.support import environment
from tests.support.celery_apps import app_for, close_app
from tests.support.factories import adjustment
from tests.support.outbox import outbox_rows, recording, shop_owing_side_effects
from tests.support.tcp_proxy import TcpProxy
from workers.app import app
from workers.db import Database, database
from workers.outbox import publish_committed


@pytest.fixture
def shop(committed: Database) -> str:
    return shop_owing_side_effects(committed)


def queued_outbox_ids(queue: str) -> list[int]:
    """Outbox ids in the task messages waiting on ``queue`` in the test broker."""
    with redis.Redis.from_url(environment.BROKER_URL) as connection:
        messages = connection.lrange(queue, 0, -1)
    return [json.loads(json.loads(m)["headers"]["argsrepr"].strip("(),[]")) for m in messages]


def test_the_workers_unit_of_work_publishes_what_its_commit_owes_by_itself(
    committed: Database, shop: str
) -> None:
    command_engine.adjust_points(database.unit_of_work(), adjustment(shop, "ada", adjustment=50))

    owed = outbox_rows(committed, shop)
    assert [row.task_name for row in owed] == [
        "loyalty.recalculate_tier",
        "loyalty.send_points_earned_email",
    ]
    assert all(row.dispatched_at is not None for row in owed)
    assert owed[0].id in queued_outbox_ids("loyalty.tiers")
    assert owed[1].id in queued_outbox_ids("loyalty.emails")


def test_the_side_effects_of_a_batch_are_published_in_one_pipeline(
    committed: Database, shop: str
) -> None:
    for queue in ("loyalty.tiers", "loyalty.emails"):
        empty_queue(queue)
    uow, owed = recording(committed)
    for amount in range(1, 21):
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=amount))
    broker = urlsplit(environment.BROKER_URL)
    proxy = TcpProxy(broker.port or 6379, reply_delay=0.05)
    publisher = app_for(
        {"LOYALTY_BROKER_URL": broker._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()}
    )
    try:
        publish_committed(publisher, owed[:2])  # connects and declares both queues
        before = proxy.client_bursts
        publish_committed(publisher, owed[2:])
        bursts = proxy.client_bursts - before
    finally:
        close_app(publisher)
        proxy.close()

    assert len(owed) == 40
    # One request per message would be 38 round trips; the pipeline is one.
    assert bursts == 1, bursts
    assert sorted(queued_outbox_ids("loyalty.tiers") + queued_outbox_ids("loyalty.emails")) == [
        entry.id for entry in owed
    ]
    assert all(row.dispatched_at is not None for row in outbox_rows(committed, shop))


def test_rows_the_broker_never_got_are_published_by_the_relay(
    committed: Database, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = Celery("down", broker="redis://127.0.0.1:9/0")
    uow, owed = recording(committed)
    command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=50))

    publish_committed(unreachable, owed)
    left_behind = outbox_rows(committed, shop)
    monkeypatch.setenv("LOYALTY_OUTBOX_GRACE", "0")
    relay_outbox()

    assert [row.dispatched_at for row in left_behind] == [None, None]
    assert all(row.dispatched_at is not None for row in outbox_rows(committed, shop))
    assert owed[0].id in queued_outbox_ids("loyalty.tiers")
    assert owed[1].id in queued_outbox_ids("loyalty.emails")


def test_fresh_rows_are_left_to_the_committing_worker(committed: Database, shop: str) -> None:
    command_engine.adjust_points(committed.unit_of_work(), adjustment(shop, "ada", adjustment=50))

    relay_outbox()  # default grace: 10 s

    assert [row.dispatched_at for row in outbox_rows(committed, shop)] == [None, None]


def empty_queue(queue: str) -> None:
    """Outbox ids restart with each test database; messages of earlier runs would match them."""
    with redis.Redis.from_url(environment.BROKER_URL) as connection:
        connection.delete(queue)


def owe(committed: Database, shop: str, task_name: str) -> OutboxEntry:
    uow, published = recording(committed)
    with uow:
        uow.owe(
            uow.outbox.owe(
                [task_name],
                shop_id=shop,
                account_id=None,
                transaction_id=None,
                revision=None,
                now=utc_now(),
            )
        )
        uow.commit()
    (entry,) = published
    return entry


def set_row(committed: Database, entry: OutboxEntry, **values: Any) -> None:
    with committed.engine.begin() as connection:
        connection.execute(update(outbox).where(outbox.c.id == entry.id).values(**values))


def test_syncs_are_published_by_the_relay_once_the_sync_delay_has_passed(
    committed: Database, shop: str
) -> None:
    empty_queue("loyalty.sync.klaviyo")
    entry = owe(committed, shop, "loyalty.sync_klaviyo")

    publish_committed(app, [entry])
    relay_outbox()  # default sync delay: 2 s
    published_too_soon = entry.id in queued_outbox_ids("loyalty.sync.klaviyo")
    set_row(committed, entry, created_at=utc_now() - timedelta(seconds=3))
    relay_outbox()

    assert not published_too_soon
    assert entry.id in queued_outbox_ids("loyalty.sync.klaviyo")
    assert outbox_rows(committed, shop)[0].dispatched_at is not None


def test_a_retry_waits_on_its_row_and_the_relay_publishes_it_when_due(
    committed: Database, shop: str
) -> None:
    empty_queue("loyalty.emails")
    entry = owe(committed, shop, "loyalty.send_points_earned_email")
    later = utc_now() + timedelta(minutes=5)
    set_row(committed, entry, created_at=utc_now() - timedelta(hours=1), next_attempt_at=later)

    relay_outbox()
    published_too_soon = entry.id in queued_outbox_ids("loyalty.emails")
    set_row(committed, entry, next_attempt_at=utc_now() - timedelta(seconds=1))
    relay_outbox()

    assert not published_too_soon
    assert outbox_rows(committed, shop)[0].dispatched_at is not None
    assert entry.id in queued_outbox_ids("loyalty.emails")


def test_a_row_in_flight_past_the_redelivery_bound_is_published_again(
    committed: Database, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_REDELIVERY_BOUND", "60")
    empty_queue("loyalty.emails")
    recent = owe(committed, shop, "loyalty.send_points_earned_email")
    stranded = owe(committed, shop, "loyalty.send_points_earned_email")
    set_row(committed, recent, dispatched_at=utc_now() - timedelta(seconds=50))
    set_row(committed, stranded, dispatched_at=utc_now() - timedelta(seconds=61))

    relay_outbox()

    queued = queued_outbox_ids("loyalty.emails")
    assert stranded.id in queued
    assert recent.id not in queued
