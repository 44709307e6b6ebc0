"""The SQL of the side effects: the outbox and its relay, tier changes, sync states, email
deliveries and dead letters, on the unit of work's connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from models.domain.names import SYNC_TASK_PREFIX
from models.domain.side_effects import OutboxEntry
from models.domain.tiers import TierDefinition
from models.persistence.tables import (
    accounts,
    dead_letters,
    email_deliveries,
    integrations,
    ledger_entries,
    outbox,
    shops,
    sync_states,
    tier_changes,
    tiers,
)


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


@dataclass(frozen=True, slots=True)
class AccountForTier:
    id: int
    lifetime: int
    revision: int
    tier_id: int | None
    tier_name: str | None


class SideEffectStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    # The outbox ---------------------------------------------------------------------------------

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

    # Tiers --------------------------------------------------------------------------------------

    def shop_tiers(self, shop_id: str) -> list[TierDefinition]:
        rows = self._db.execute(
            select(tiers.c.id, tiers.c.name, tiers.c.threshold).where(tiers.c.shop_id == shop_id)
        )
        return [TierDefinition(row.id, row.name, row.threshold) for row in rows]

    def lock_accounts_for_tier(
        self, shop_id: str, *, account_id: int | None = None, after_id: int = 0, limit: int = 1
    ) -> list[AccountForTier]:
        """Lock first, then read: a locking read that waited for another transaction sees that
        transaction's account row, but (in READ COMMITTED) still the tier row it joined before
        waiting, so a tier changed meanwhile would be recorded with a stale "from"."""
        lock = (
            select(accounts.c.id)
            .where(accounts.c.shop_id == shop_id, accounts.c.id > after_id)
            .order_by(accounts.c.id)
            .limit(limit)
            .with_for_update()
        )
        if account_id is not None:
            lock = lock.where(accounts.c.id == account_id)
        locked = list(self._db.execute(lock).scalars())
        if not locked:
            return []
        read = (
            select(
                accounts.c.id,
                accounts.c.lifetime,
                accounts.c.revision,
                accounts.c.tier_id,
                tiers.c.name,
            )
            .select_from(accounts.outerjoin(tiers, tiers.c.id == accounts.c.tier_id))
            .where(accounts.c.id.in_(locked))
            .order_by(accounts.c.id)
        )
        return [AccountForTier(*row) for row in self._db.execute(read)]

    def change_tier(
        self,
        account: AccountForTier,
        new_tier: TierDefinition | None,
        *,
        shop_id: str,
        cause: str,
        transaction_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
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

    def enabled_providers(self, shop_id: str) -> list[str]:
        return list(
            self._db.execute(
                select(integrations.c.provider)
                .where(integrations.c.shop_id == shop_id, integrations.c.enabled)
                .order_by(integrations.c.provider)
            ).scalars()
        )

    # Syncs --------------------------------------------------------------------------------------

    def integration(self, shop_id: str, provider: str) -> Any:
        return self._db.execute(
            select(integrations).where(
                integrations.c.shop_id == shop_id, integrations.c.provider == provider
            )
        ).one_or_none()

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

    def account_state(self, account_id: int) -> Any:
        return self._db.execute(
            select(
                accounts.c.shop_id,
                accounts.c.customer_id,
                accounts.c.email,
                accounts.c.phone,
                accounts.c.first_name,
                accounts.c.last_name,
                accounts.c.balance,
                accounts.c.lifetime,
                accounts.c.revision,
                accounts.c.last_activity_at,
                tiers.c.name.label("tier_name"),
                shops.c.name.label("shop_name"),
                shops.c.email_from,
            )
            .select_from(
                accounts.join(shops, shops.c.id == accounts.c.shop_id).outerjoin(
                    tiers, tiers.c.id == accounts.c.tier_id
                )
            )
            .where(accounts.c.id == account_id)
        ).one_or_none()

    def ledger_entry(self, transaction_id: uuid.UUID) -> Any:
        return self._db.execute(
            select(ledger_entries).where(ledger_entries.c.transaction_id == transaction_id)
        ).one_or_none()

    # Emails -------------------------------------------------------------------------------------

    def email_status(self, transaction_id: uuid.UUID) -> str | None:
        """What became of the transaction's email: None when it was never handed to the SMTP
        server (or the server refused it), else sending, sent or unknown."""
        status = self._db.execute(
            select(email_deliveries.c.status).where(
                email_deliveries.c.transaction_id == transaction_id
            )
        ).scalar_one_or_none()
        return None if status in (None, "failed") else str(status)

    def record_hand_over(
        self,
        *,
        transaction_id: uuid.UUID,
        shop_id: str,
        account_id: int,
        recipient: str,
        message_id: str,
        now: datetime,
    ) -> None:
        """The email is about to be handed to the SMTP server: from this commit on it is never
        sent again unless the server refuses it ("failed", which a later attempt replaces).
        Writing it again changes nothing."""
        self._db.execute(
            delete(email_deliveries).where(
                email_deliveries.c.transaction_id == transaction_id,
                email_deliveries.c.status == "failed",
            )
        )
        if self.email_status(transaction_id) is not None:
            return
        self._db.execute(
            insert(email_deliveries).values(
                transaction_id=transaction_id,
                shop_id=shop_id,
                account_id=account_id,
                status="sending",
                recipient=recipient,
                message_id=message_id,
                created_at=now,
                updated_at=now,
            )
        )

    def finish_email(self, transaction_id: uuid.UUID, status: str, now: datetime) -> None:
        self._db.execute(
            update(email_deliveries)
            .where(email_deliveries.c.transaction_id == transaction_id)
            .values(status=status, updated_at=now)
        )
