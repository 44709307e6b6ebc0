"""Shops, accounts as the support tools read them, owed side effects and refused messages, on
the unit of work's connection. Commands are written by ``models.persistence.batch_store``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    insert,
    select,
)

from models.domain.command_log import rejected_message_row
from models.domain.side_effects import OutboxEntry
from models.persistence.tables import (
    accounts,
    ledger_entries,
    outbox,
    rejected_messages,
    shops,
    tiers,
)

_INSERT_OUTBOX = insert(outbox).returning(outbox.c.id, outbox.c.task_name)
_INSERT_REJECTED = insert(rejected_messages)


class LoyaltyStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def shop_exists(self, shop_id: str) -> bool:
        return self._db.execute(select(shops.c.id).where(shops.c.id == shop_id)).first() is not None

    def create_shop(
        self, shop_id: str, name: str | None = None, email_from: str | None = None
    ) -> bool:
        if self.shop_exists(shop_id):
            return False
        self._db.execute(insert(shops).values(id=shop_id, name=name, email_from=email_from))
        return True

    def account_summary(self, shop_id: str, customer_id: str) -> Any:
        return self._db.execute(
            select(
                accounts,
                tiers.c.name.label("tier_name"),
                tiers.c.threshold.label("tier_threshold"),
            )
            .select_from(accounts.outerjoin(tiers, tiers.c.id == accounts.c.tier_id))
            .where(accounts.c.shop_id == shop_id, accounts.c.customer_id == customer_id)
        ).one_or_none()

    def recent_ledger(self, account_id: int, limit: int) -> Sequence[Any]:
        return self._db.execute(
            select(ledger_entries)
            .where(ledger_entries.c.account_id == account_id)
            .order_by(ledger_entries.c.id.desc())
            .limit(limit)
        ).all()

    def owe(
        self,
        task_names: list[str],
        *,
        shop_id: str,
        account_id: int | None,
        transaction_id: uuid.UUID | None,
        revision: int | None,
        now: datetime,
    ) -> list[OutboxEntry]:
        """Outbox rows for side effects owed by the current transaction."""
        owed = []
        for task_name in task_names:
            row = self._db.execute(
                _INSERT_OUTBOX,
                {
                    "task_name": task_name,
                    "shop_id": shop_id,
                    "account_id": account_id,
                    "transaction_id": transaction_id,
                    "revision": revision,
                    "created_at": now,
                },
            ).one()
            owed.append(OutboxEntry(row.id, row.task_name))
        return owed

    def record_rejected_message(
        self,
        *,
        command_type: str,
        shop_id: str | None,
        command_id: str | None,
        payload: Any,
        result: dict[str, Any],
        now: datetime,
    ) -> None:
        self._db.execute(
            _INSERT_REJECTED,
            rejected_message_row(command_type, shop_id, command_id, payload, result, now),
        )
