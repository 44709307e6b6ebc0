"""Pickle is refused by the worker: a pickled command is never applied."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import Engine, select

from models.persistence.tables import processed_commands
from tests.support.factories import create_customer, create_shop
from workers.app import app
from workers.client.publisher import publish_adjustment
from workers.db import database
from workers.process import WorkerProcess

pytestmark = pytest.mark.e2e


def test_a_pickled_command_is_not_applied(worker: WorkerProcess, engine: Engine) -> None:
    shop_id = f"pickle-{uuid.uuid4().hex[:8]}"
    create_shop(database.unit_of_work(), shop_id)
    create_customer(database.unit_of_work(), shop_id, "c")
    pickled = {"command_id": "pickled", "shop_id": shop_id, "customer_id": "c", "adjustment": 5}

    app.send_task(
        "loyalty.adjust_points", args=[pickled], queue="loyalty.adjustments", serializer="pickle"
    )
    after = publish_adjustment(pickled | {"command_id": "json"}).get(timeout=30)
    time.sleep(1)

    assert after["account"]["points"]["balance"] == 5
    with engine.connect() as connection:
        stored = connection.execute(
            select(processed_commands.c.command_id).where(
                processed_commands.c.shop_id == shop_id,
                processed_commands.c.command_type == "adjust_points",
            )
        ).scalars()
        assert list(stored) == ["json"]
    assert "ContentDisallowed" in worker.log() or "disallowed" in worker.log().lower()
