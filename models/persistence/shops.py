"""Shops: created and edited by the operators, read by the support tools and the emails."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from models.domain.expiry import ExpiryPolicy
from models.persistence.tables import shops


class ShopStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def exists(self, shop_id: str) -> bool:
        return self._db.execute(select(shops.c.id).where(shops.c.id == shop_id)).first() is not None

    def create(self, shop_id: str, name: str | None = None, email_from: str | None = None) -> bool:
        """Returns False, changing nothing, when the shop exists already."""
        if self.exists(shop_id):
            return False
        self._db.execute(insert(shops).values(id=shop_id, name=name, email_from=email_from))
        return True

    def update(self, shop_id: str, changes: dict[str, Any]) -> bool:
        """Returns whether the shop exists."""
        if not changes:
            return self.exists(shop_id)
        updated = self._db.execute(update(shops).where(shops.c.id == shop_id).values(**changes))
        return updated.rowcount == 1

    def get(self, shop_id: str) -> Any:
        return self._db.execute(select(shops).where(shops.c.id == shop_id)).one_or_none()

    def expiry_policies(self, shop_id: str | None = None) -> dict[str, ExpiryPolicy]:
        """The shops with an expiry policy (or ``shop_id`` alone, if it has one)."""
        query = select(
            shops.c.id, shops.c.points_expire_after_days, shops.c.expiry_reminder_days
        ).where(shops.c.points_expire_after_days > 0)
        if shop_id is not None:
            query = query.where(shops.c.id == shop_id)
        return {
            row.id: ExpiryPolicy(row.points_expire_after_days, row.expiry_reminder_days)
            for row in self._db.execute(query.order_by(shops.c.id))
        }
