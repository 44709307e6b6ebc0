"""A database outage while commands arrive: the worker retries them, with backoff, until the
database is back, and then applies every one exactly once. None becomes a rejection."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from celery import Celery
from celery.result import ResultSet
from sqlalchemy import Engine, func, select

from models.persistence.tables import ledger_entries, processed_commands, rejected_messages
from tests.support import environment
from tests.support.factories import create_customer, create_shop
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker import start_worker
from workers.db import Database

pytestmark = pytest.mark.e2e

FAULT_BROKER = environment.BROKER_URL.rsplit("/", 1)[0] + "/11"


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(urlsplit(environment.POSTGRES_SERVER).port or 5432)
    yield proxy
    proxy.close()


@pytest.fixture
def client() -> Iterator[Celery]:
    """A plain Celery client on its own broker, as any upstream publisher would be."""
    with redis.Redis.from_url(FAULT_BROKER) as connection:
        connection.flushdb()
    client = Celery("upstream", broker=FAULT_BROKER, backend=FAULT_BROKER)
    client.conf.update(task_serializer="json", accept_content=["json"])
    yield client
    client.close()


@pytest.fixture
def worker_behind_proxy(engine: Engine, proxy: TcpProxy, client: Celery) -> Iterator[None]:
    database_url = environment.DATABASE_URL.replace(
        f":{urlsplit(environment.POSTGRES_SERVER).port or 5432}/", f":{proxy.port}/"
    )
    env = environment.worker_environment(
        LOYALTY_DATABASE_URL=database_url,
        LOYALTY_BROKER_URL=FAULT_BROKER,
        LOYALTY_RESULT_BACKEND=FAULT_BROKER,
    )
    worker = start_worker(client, env, name="faults")
    yield
    worker.stop()


def test_commands_wait_out_a_database_outage(
    engine: Engine, proxy: TcpProxy, client: Celery, worker_behind_proxy: None
) -> None:
    shop_id = f"outage-{uuid.uuid4().hex[:8]}"
    database = Database(environment.DATABASE_URL)
    create_shop(database.unit_of_work(), shop_id)
    create_customer(database.unit_of_work(), shop_id, "patient")
    commands = [
        {"command_id": f"c-{i}", "shop_id": shop_id, "customer_id": "patient", "adjustment": i}
        for i in range(1, 31)
    ]

    proxy.cut()
    pending = [
        client.send_task("loyalty.adjust_points", args=[c], queue="loyalty.adjustments")
        for c in commands
    ]
    time.sleep(4)
    with engine.connect() as connection:
        during_outage = connection.execute(
            select(func.count())
            .select_from(processed_commands)
            .where(
                processed_commands.c.shop_id == shop_id,
                processed_commands.c.command_type == "adjust_points",
            )
        ).scalar_one()
    proxy.restore()
    results = ResultSet(pending).join_native(timeout=120)

    assert during_outage == 0
    assert [r["status"] for r in results] == ["applied"] * len(commands)
    with engine.connect() as connection:
        applied = connection.execute(
            select(func.count(), func.sum(ledger_entries.c.applied)).where(
                ledger_entries.c.shop_id == shop_id
            )
        ).one()
        rejected = connection.execute(
            select(func.count())
            .select_from(rejected_messages)
            .where(rejected_messages.c.shop_id == shop_id)
        ).scalar_one()
    assert tuple(applied) == (30, sum(range(1, 31)))
    assert rejected == 0
    database.engine.dispose()
