"""Arranging data through the same code paths production uses."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, select

from models.persistence.tables import accounts, ledger_entries
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine


def create_shop(uow: UnitOfWork, shop_id: str) -> None:
    with uow:
        uow.shops.create(shop_id, f"Shop {shop_id}")
        uow.commit()


def create_customer(uow: UnitOfWork, shop_id: str, customer_id: str, **fields: Any) -> None:
    result = command_engine.upsert_customer(
        uow,
        {
            "command_id": f"upsert-{uuid.uuid4()}",
            "shop_id": shop_id,
            "customer_id": customer_id,
            **fields,
        },
    )
    assert result["status"] == "applied", result


def adjustment(shop_id: str, customer_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "command_id": str(uuid.uuid4()),
        "shop_id": shop_id,
        "customer_id": customer_id,
        **fields,
    }


def reversal(shop_id: str, customer_id: str, transaction_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "command_id": f"rev-{uuid.uuid4()}",
        "shop_id": shop_id,
        "customer_id": customer_id,
        "transaction_id": transaction_id,
        **fields,
    }


def account_row(connection: Connection, shop_id: str, customer_id: str) -> Any:
    return connection.execute(
        select(accounts).where(accounts.c.shop_id == shop_id, accounts.c.customer_id == customer_id)
    ).one()


def ledger_rows(connection: Connection, shop_id: str) -> list[Any]:
    return list(
        connection.execute(
            select(ledger_entries)
            .where(ledger_entries.c.shop_id == shop_id)
            .order_by(ledger_entries.c.id)
        )
    )
