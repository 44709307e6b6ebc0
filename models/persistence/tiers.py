"""A shop's tiers and the tier changes of its accounts, each recorded with its cause."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from models.domain.tiers import TierDefinition
from models.persistence.accounts import AccountForTier
from models.persistence.tables import accounts, tier_changes, tiers


def has_tiers(shop_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether the shop has any tier (the batch read asks it of each of its shops)."""
    return select(tiers.c.id).where(tiers.c.shop_id == shop_id).exists()


class TierStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def definitions(self, shop_id: str) -> list[TierDefinition]:
        rows = self._db.execute(
            select(tiers.c.id, tiers.c.name, tiers.c.threshold).where(tiers.c.shop_id == shop_id)
        )
        return [TierDefinition(row.id, row.name, row.threshold) for row in rows]

    def set(self, shop_id: str, name: str, threshold: int) -> bool:
        """Creates or moves the tier; returns True when it was new."""
        moved = self._db.execute(
            update(tiers)
            .where(tiers.c.shop_id == shop_id, tiers.c.name == name)
            .values(threshold=threshold)
        )
        if moved.rowcount:
            return False
        self._db.execute(insert(tiers).values(shop_id=shop_id, name=name, threshold=threshold))
        return True

    def delete(self, shop_id: str, name: str) -> bool:
        deleted = self._db.execute(
            delete(tiers).where(tiers.c.shop_id == shop_id, tiers.c.name == name)
        )
        return deleted.rowcount == 1

    def with_members(self, shop_id: str) -> Sequence[Any]:
        """The shop's tiers, lowest first, each with how many accounts it holds."""
        members = (
            select(func.count())
            .where(accounts.c.tier_id == tiers.c.id)
            .correlate(tiers)
            .scalar_subquery()
        )
        return self._db.execute(
            select(tiers.c.name, tiers.c.threshold, members.label("members"))
            .where(tiers.c.shop_id == shop_id)
            .order_by(tiers.c.threshold, tiers.c.name)
        ).all()

    def change(
        self,
        account: AccountForTier,
        new_tier: TierDefinition | None,
        *,
        shop_id: str,
        cause: str,
        transaction_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        """Moves the (locked) account to ``new_tier`` and records the change."""
        self._db.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(tier_id=None if new_tier is None else new_tier.id, updated_at=now)
        )
        self._db.execute(
            insert(tier_changes).values(
                shop_id=shop_id,
                account_id=account.id,
                from_tier=account.tier_name,
                to_tier=None if new_tier is None else new_tier.name,
                lifetime_points=account.lifetime,
                cause=cause,
                transaction_id=transaction_id,
                created_at=now,
            )
        )

    def changes_by_transaction(
        self, account_id: int, transaction_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Any]]:
        """The tier changes each adjustment caused (changes after a shop edited its tiers belong
        to no entry and are left out)."""
        if not transaction_ids:
            return {}
        changes: dict[uuid.UUID, list[Any]] = {}
        for row in self._db.execute(
            select(tier_changes)
            .where(
                tier_changes.c.account_id == account_id,
                tier_changes.c.transaction_id.in_(transaction_ids),
            )
            .order_by(tier_changes.c.id)
        ):
            changes.setdefault(row.transaction_id, []).append(row)
        return changes
