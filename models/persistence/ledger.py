"""The ledger: every applied adjustment, appended by the batch write, read by support and by the
side effects an adjustment owes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from models.persistence.set_based import insert_rows
from models.persistence.tables import ledger_entries


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """Entries newest first; ``next_before`` continues the listing, None when it is complete."""

    entries: Sequence[Any]
    next_before: int | None


class LedgerStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def append_many(self, rows: list[dict[str, Any]]) -> None:
        insert_rows(self._db, ledger_entries, rows)

    def entry(self, transaction_id: uuid.UUID) -> Any:
        return self._db.execute(
            select(ledger_entries).where(ledger_entries.c.transaction_id == transaction_id)
        ).one_or_none()

    def recent(self, account_id: int, limit: int) -> Sequence[Any]:
        return self._db.execute(
            select(ledger_entries)
            .where(ledger_entries.c.account_id == account_id)
            .order_by(ledger_entries.c.id.desc())
            .limit(limit)
        ).all()

    def page(self, account_id: int, *, before: int | None, limit: int) -> LedgerPage:
        """Keyset paging on the entry id (ids only grow), so entries appended while support
        pages through the history never shift a page; one extra row says whether more follow."""
        query = select(ledger_entries).where(ledger_entries.c.account_id == account_id)
        if before is not None:
            query = query.where(ledger_entries.c.id < before)
        rows = self._db.execute(query.order_by(ledger_entries.c.id.desc()).limit(limit + 1)).all()
        entries = rows[:limit]
        return LedgerPage(entries, entries[-1].id if len(rows) > limit else None)
