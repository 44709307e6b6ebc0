"""The SQL behind the operator commands: shops, tiers and provider integrations, and the reads
support staff use to explain an account (its ledger) or a command (its stored result)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from models.persistence.tables import (
    accounts,
    integrations,
    ledger_entries,
    processed_commands,
    rejected_messages,
    shops,
    tier_changes,
    tiers,
)


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """Entries newest first; ``next_before`` continues the listing, None when it is complete."""

    entries: Sequence[Any]
    next_before: int | None


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

    def account_id(self, shop_id: str, customer_id: str) -> int | None:
        account_id: int | None = self._db.execute(
            select(accounts.c.id).where(
                accounts.c.shop_id == shop_id, accounts.c.customer_id == customer_id
            )
        ).scalar_one_or_none()
        return account_id

    def ledger_page(self, account_id: int, *, before: int | None, limit: int) -> LedgerPage:
        """Keyset paging on the entry id (ids only grow), so entries appended while support
        pages through the history never shift a page; one extra row says whether more follow."""
        query = select(ledger_entries).where(ledger_entries.c.account_id == account_id)
        if before is not None:
            query = query.where(ledger_entries.c.id < before)
        rows = self._db.execute(query.order_by(ledger_entries.c.id.desc()).limit(limit + 1)).all()
        entries = rows[:limit]
        return LedgerPage(entries, entries[-1].id if len(rows) > limit else None)

    def tier_changes_by_transaction(
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

    def processed_command(self, shop_id: str, command_id: str) -> Any:
        return self._db.execute(
            select(
                processed_commands.c.command_type,
                processed_commands.c.status,
                processed_commands.c.result,
                processed_commands.c.created_at,
            ).where(
                processed_commands.c.shop_id == shop_id,
                processed_commands.c.command_id == command_id,
            )
        ).one_or_none()

    def rejected_messages(self, shop_id: str, command_id: str, limit: int) -> Sequence[Any]:
        """Refusals that did not claim the id (invalid input, a reused id), newest first; a
        sender stuck in a loop can leave many, so at most ``limit``."""
        return self._db.execute(
            select(
                rejected_messages.c.id,
                rejected_messages.c.command_type,
                rejected_messages.c.code,
                rejected_messages.c.result,
                rejected_messages.c.payload,
                rejected_messages.c.payload_truncated,
                rejected_messages.c.created_at,
            )
            .where(
                rejected_messages.c.shop_id == shop_id,
                rejected_messages.c.command_id == command_id,
            )
            .order_by(rejected_messages.c.id.desc())
            .limit(limit)
        ).all()
