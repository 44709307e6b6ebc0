"""The outbox: the side effects a transaction owes, their relay and their attempts, and the dead
letters of those that gave up."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, text, update

from models.domain.names import SYNC_TASK_PREFIX
from models.domain.side_effects import OutboxEntry
from models.persistence.set_based import insert_rows
from models.persistence.tables import accounts, dead_letters, outbox

_INSERT_OUTBOX = insert(outbox).returning(outbox.c.id, outbox.c.task_name)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    task_name: str
    shop_id: str
    account_id: int | None
    transaction_id: uuid.UUID | None
    revision: int | None
    attempts: int
    resume_after: int | None


class OutboxStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

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

    def owe_many(self, rows: list[dict[str, Any]]) -> list[OutboxEntry]:
        """A batch's owed side effects in one statement, in order."""
        ids = insert_rows(self._db, outbox, rows)
        return [OutboxEntry(id_, row["task_name"]) for id_, row in zip(ids, rows, strict=True)]

    def claim_for_relay(
        self,
        now: datetime,
        *,
        grace: timedelta,
        sync_delay: timedelta,
        redispatch_after: timedelta,
        limit: int,
    ) -> list[OutboxEntry]:
        """Rows due and not in flight, and rows in flight for so long that their message must be
        lost. A new row is due after ``grace`` (the committing worker publishes it at once; the
        relay must not race it), a new sync after ``sync_delay`` (so a burst of adjustments to
        one customer is pushed once; the relay alone publishes syncs), a retried or postponed
        row at its ``next_attempt_at``. SKIP LOCKED lets several relays share the work."""
        is_sync = outbox.c.task_name.startswith(SYNC_TASK_PREFIX)
        first_due = or_(
            and_(is_sync, outbox.c.created_at <= now - sync_delay),
            and_(~is_sync, outbox.c.created_at <= now - grace),
        )
        query = (
            select(outbox.c.id, outbox.c.task_name)
            .where(
                outbox.c.completed_at.is_(None),
                or_(
                    and_(
                        outbox.c.dispatched_at.is_(None),
                        or_(
                            outbox.c.next_attempt_at <= now,
                            and_(outbox.c.next_attempt_at.is_(None), first_due),
                        ),
                    ),
                    outbox.c.dispatched_at < now - redispatch_after,
                ),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if self._db.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [OutboxEntry(row.id, row.task_name) for row in self._db.execute(query)]

    def mark_dispatched(
        self, ids: Sequence[int], now: datetime, *, wait_for_flush: bool = True
    ) -> None:
        if not ids:
            return
        if not wait_for_flush and self._db.dialect.name == "postgresql":
            self._db.execute(text("SET LOCAL synchronous_commit = off"))
        self._db.execute(update(outbox).where(outbox.c.id.in_(ids)).values(dispatched_at=now))

    def lock_pending(self, outbox_id: int) -> OutboxRow | None:
        """The row, locked so two deliveries of one side effect run one after the other; None
        once it is finished (or gone with a rolled-back transaction)."""
        row = self._db.execute(
            select(
                outbox.c.id,
                outbox.c.task_name,
                outbox.c.shop_id,
                outbox.c.account_id,
                outbox.c.transaction_id,
                outbox.c.revision,
                outbox.c.attempts,
                outbox.c.resume_after,
            )
            .where(outbox.c.id == outbox_id, outbox.c.completed_at.is_(None))
            .with_for_update()
        ).one_or_none()
        return None if row is None else OutboxRow(*row)

    def complete(self, outbox_id: int, outcome: str, now: datetime) -> None:
        self._db.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(completed_at=now, outcome=outcome[:200])
        )

    def record_failure(self, outbox_id: int, error: str) -> int:
        """Counts a failed attempt; returns the attempts so far."""
        attempts: int = self._db.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(attempts=outbox.c.attempts + 1, last_error=error)
            .returning(outbox.c.attempts)
        ).scalar_one()
        return attempts

    def postpone(self, outbox_id: int, until: datetime, *, resume_after: int | None = None) -> None:
        """Out of flight until ``until``, when the relay publishes it again; ``resume_after``
        records how far shop-wide work got."""
        values: dict[str, Any] = {"dispatched_at": None, "next_attempt_at": until}
        if resume_after is not None:
            values["resume_after"] = resume_after
        self._db.execute(update(outbox).where(outbox.c.id == outbox_id).values(**values))

    # Dead letters -------------------------------------------------------------------------------

    def dead_letter(self, row: OutboxRow, error: str, attempts: int, now: datetime) -> None:
        self._db.execute(
            insert(dead_letters).values(
                outbox_id=row.id,
                task_name=row.task_name,
                shop_id=row.shop_id,
                error=error,
                attempts=attempts,
                created_at=now,
            )
        )
        self.complete(row.id, "dead", now)

    def list_dead_letters(self, *, include_replayed: bool, limit: int) -> Sequence[Any]:
        query = (
            select(
                dead_letters,
                outbox.c.account_id,
                outbox.c.transaction_id,
                accounts.c.customer_id,
            )
            .select_from(
                dead_letters.join(outbox, outbox.c.id == dead_letters.c.outbox_id).outerjoin(
                    accounts, accounts.c.id == outbox.c.account_id
                )
            )
            .order_by(dead_letters.c.id)
            .limit(limit)
        )
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        return self._db.execute(query).all()

    def replay_dead_letters(self, ids: Sequence[int] | None, now: datetime) -> list[OutboxEntry]:
        """Reopens the outbox rows of the given (or all) unreplayed dead letters."""
        query = select(dead_letters.c.id, dead_letters.c.outbox_id).where(
            dead_letters.c.replayed_at.is_(None)
        )
        if ids is not None:
            query = query.where(dead_letters.c.id.in_(ids))
        letters = self._db.execute(query.with_for_update()).all()
        if not letters:
            return []
        outbox_ids = [letter.outbox_id for letter in letters]
        self._db.execute(
            update(dead_letters)
            .where(dead_letters.c.id.in_([letter.id for letter in letters]))
            .values(replayed_at=now)
        )
        reopened = self._db.execute(
            update(outbox)
            .where(outbox.c.id.in_(outbox_ids))
            .values(
                completed_at=None,
                outcome=None,
                attempts=0,
                dispatched_at=None,
                next_attempt_at=now,
            )
            .returning(outbox.c.id, outbox.c.task_name)
        )
        return sorted((OutboxEntry(row.id, row.task_name) for row in reopened), key=lambda e: e.id)
