"""The SQL behind the operator commands: shops, tiers and provider integrations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from models.tables import accounts, integrations, shops, tiers


class AdminStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def update_shop(self, shop_id: str, changes: dict[str, Any]) -> bool:
        if not changes:
            return (
                self._db.execute(select(shops.c.id).where(shops.c.id == shop_id)).first()
                is not None
            )
        updated = self._db.execute(update(shops).where(shops.c.id == shop_id).values(**changes))
        return updated.rowcount == 1

    def shop(self, shop_id: str) -> Any:
        return self._db.execute(select(shops).where(shops.c.id == shop_id)).one_or_none()

    def set_tier(self, shop_id: str, name: str, threshold: int) -> bool:
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

    def delete_tier(self, shop_id: str, name: str) -> bool:
        deleted = self._db.execute(
            delete(tiers).where(tiers.c.shop_id == shop_id, tiers.c.name == name)
        )
        return deleted.rowcount == 1

    def list_tiers(self, shop_id: str) -> Sequence[Any]:
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

    def enable_integration(
        self, shop_id: str, provider: str, encrypted_api_key: str, key_hint: str, now: datetime
    ) -> None:
        changes = {"enabled": True, "encrypted_api_key": encrypted_api_key, "key_hint": key_hint}
        updated = self._db.execute(
            update(integrations)
            .where(integrations.c.shop_id == shop_id, integrations.c.provider == provider)
            .values(**changes, updated_at=now)
        )
        if not updated.rowcount:
            self._db.execute(
                insert(integrations).values(
                    shop_id=shop_id, provider=provider, **changes, created_at=now, updated_at=now
                )
            )

    def disable_integration(self, shop_id: str, provider: str, now: datetime) -> bool:
        updated = self._db.execute(
            update(integrations)
            .where(integrations.c.shop_id == shop_id, integrations.c.provider == provider)
            .values(enabled=False, updated_at=now)
        )
        return updated.rowcount == 1

    def list_integrations(self, shop_id: str) -> Sequence[Any]:
        return self._db.execute(
            select(
                integrations.c.provider,
                integrations.c.enabled,
                integrations.c.key_hint,
                integrations.c.updated_at,
            )
            .where(integrations.c.shop_id == shop_id)
            .order_by(integrations.c.provider)
        ).all()
