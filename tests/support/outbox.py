"""What the outbox tests share: a committed shop whose adjustments owe side effects, its outbox
rows, and a unit of work whose commits hand their entries to a list instead of the broker."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from models.domain.side_effects import OutboxEntry
from models.persistence.tables import outbox
from models.persistence.unit_of_work import UnitOfWork
from tests.support.factories import create_customer, create_shop
from workers.db import Database


def shop_owing_side_effects(committed: Database) -> str:
    """A shop with a Gold tier and the customer ``ada`` with an email: an increase owes a tier
    recalculation and an email."""
    shop_id = f"outbox-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    with committed.unit_of_work() as uow:
        uow.tiers.set(shop_id, "Gold", 100_000)
        uow.commit()
    create_customer(committed.unit_of_work(), shop_id, "ada", email="ada@example.com")
    return shop_id


def outbox_rows(committed: Database, shop_id: str) -> list[Any]:
    with committed.engine.connect() as connection:
        return list(
            connection.execute(
                select(outbox).where(outbox.c.shop_id == shop_id).order_by(outbox.c.id)
            )
        )


def recording(committed: Database) -> tuple[UnitOfWork, list[OutboxEntry]]:
    """A unit of work whose commits hand their outbox rows to a list instead of the broker."""
    published: list[OutboxEntry] = []
    return UnitOfWork(committed.sessions, published.extend), published
