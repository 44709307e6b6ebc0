"""Provider integrations (which shop syncs to which provider, with its encrypted API key) and the
sync states (what was last pushed for an account to a provider)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from models.persistence.tables import integrations, sync_states


def enabled_for(shop_id: ColumnElement[Any] | str) -> ColumnElement[bool]:
    """The integrations a shop syncs to: the one definition, also joined by the batch read."""
    return (integrations.c.shop_id == shop_id) & integrations.c.enabled


class IntegrationStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def enabled_providers(self, shop_id: str) -> list[str]:
        return list(
            self._db.execute(
                select(integrations.c.provider)
                .where(enabled_for(shop_id))
                .order_by(integrations.c.provider)
            ).scalars()
        )

    def get(self, shop_id: str, provider: str) -> Any:
        return self._db.execute(
            select(integrations).where(
                integrations.c.shop_id == shop_id, integrations.c.provider == provider
            )
        ).one_or_none()

    def for_shop(self, shop_id: str) -> Sequence[Any]:
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

    def enable(
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

    def disable(self, shop_id: str, provider: str, now: datetime) -> bool:
        updated = self._db.execute(
            update(integrations)
            .where(integrations.c.shop_id == shop_id, integrations.c.provider == provider)
            .values(enabled=False, updated_at=now)
        )
        return updated.rowcount == 1

    def lock_sync_state(self, account_id: int, provider: str) -> Any:
        """Serialises pushes per account and provider, so an older state can never land after a
        newer one."""
        insert_new = (
            postgresql.insert(sync_states)
            if self._db.dialect.name == "postgresql"
            else sqlite.insert(sync_states)
        )
        self._db.execute(
            insert_new.values(
                account_id=account_id, provider=provider, synced_revision=-1
            ).on_conflict_do_nothing()
        )
        return self._db.execute(
            select(sync_states.c.synced_revision, sync_states.c.synced_fingerprint)
            .where(sync_states.c.account_id == account_id, sync_states.c.provider == provider)
            .with_for_update()
        ).one()

    def save_sync_state(
        self, account_id: int, provider: str, revision: int, fingerprint: str, now: datetime
    ) -> None:
        self._db.execute(
            update(sync_states)
            .where(sync_states.c.account_id == account_id, sync_states.c.provider == provider)
            .values(synced_revision=revision, synced_fingerprint=fingerprint, synced_at=now)
        )
