"""The ledger: every applied points change, appended by the batch write, read by support, by the
side effects a change owes and by the reversals that name it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from models.domain.reversals import EntryKind, ReversibleEntry
from models.persistence.set_based import insert_rows
from models.persistence.tables import ledger_entries

_REVERSALS = ledger_entries.alias("reversals")
_REVERSIBLE = select(
    ledger_entries.c.transaction_id,
    ledger_entries.c.shop_id,
    ledger_entries.c.account_id,
    ledger_entries.c.kind,
    ledger_entries.c.applied,
    (ledger_entries.c.lifetime_after - ledger_entries.c.lifetime_before).label("lifetime_moved"),
    select(func.coalesce(func.sum(func.abs(_REVERSALS.c.requested)), 0))
    .where(_REVERSALS.c.reverses_transaction_id == ledger_entries.c.transaction_id)
    .scalar_subquery()
    .label("reversed"),
).where(ledger_entries.c.transaction_id.in_(bindparam("ids", expanding=True)))


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

    def reversible(self, transaction_ids: set[uuid.UUID]) -> dict[uuid.UUID, ReversibleEntry]:
        """The entries reversals name, with what earlier reversals consumed of each. Read under
        the accounts' locks: every reversal of an entry is of the same account, so the sums
        cannot change before the batch commits."""
        if not transaction_ids:
            return {}
        rows = self._db.execute(_REVERSIBLE, {"ids": sorted(transaction_ids)})
        return {
            row.transaction_id: ReversibleEntry(
                row.transaction_id,
                row.shop_id,
                row.account_id,
                EntryKind(row.kind),
                row.applied,
                row.lifetime_moved,
                int(row.reversed),
            )
            for row in rows
        }

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
