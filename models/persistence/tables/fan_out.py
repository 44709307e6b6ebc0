"""The side effects: the outbox, tier changes, provider integrations and what was synced, email
deliveries and dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.domain.fields import ID_LENGTH
from models.persistence.tables.base import Base, BigId


class OutboxMessage(Base):
    """A side effect owed by a committed transaction, written in that same transaction.

    ``dispatched_at`` says a task message is in flight; ``completed_at`` says the task finished
    (done, skipped or dead-lettered). The relay publishes rows that are owed, not in flight and
    due, and rows in flight so long that their message must have been lost."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "id",
            postgresql_where=text("completed_at IS NULL"),
            sqlite_where=text("completed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_name: Mapped[str] = mapped_column(String(100))
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    # None for shop-wide work (recalculating every account's tier after the tiers changed).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The account revision the side effect was owed for (syncs skip what is already pushed).
    revision: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    # When the relay publishes it again: after a failed attempt or a rate-limit wait.
    next_attempt_at: Mapped[datetime | None]
    # Shop-wide work done in several runs: the last account id the previous runs finished.
    resume_after: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(200))


class TierChange(Base):
    """Every change of an account's tier, with what caused it."""

    __tablename__ = "tier_changes"
    __table_args__ = (Index(None, "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    from_tier: Mapped[str | None] = mapped_column(String(100))
    to_tier: Mapped[str | None] = mapped_column(String(100))
    lifetime_points: Mapped[int] = mapped_column(BigInteger)
    # "adjustment" (with its transaction id) or "tiers_changed" (the shop's tiers were edited).
    cause: Mapped[str] = mapped_column(String(32))
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime]


class Integration(Base):
    """A shop's connection to a marketing provider. The API key is encrypted with
    LOYALTY_SECRET_KEY; ``key_hint`` (its last characters) is all that is ever shown."""

    __tablename__ = "integrations"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    encrypted_api_key: Mapped[str] = mapped_column(Text)
    key_hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SyncState(Base):
    """What was last pushed to a provider for an account, so stale or repeated syncs are skipped."""

    __tablename__ = "sync_states"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    synced_revision: Mapped[int] = mapped_column(BigInteger)
    synced_fingerprint: Mapped[str | None] = mapped_column(String(64))
    synced_at: Mapped[datetime | None]


class EmailDelivery(Base):
    """Written just before a points-earned email is handed to the SMTP server, so it goes out
    at most once per transaction (and is sent again only if the server refused it)."""

    __tablename__ = "email_deliveries"

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # sending (being handed over, or the sender died: may have arrived), sent, failed (refused:
    # may be tried again), unknown (the reply was lost: may have arrived)
    status: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeadLetter(Base):
    """A side effect that failed for good, kept for an operator to read and replay."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index(None, "replayed_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    task_name: Mapped[str] = mapped_column(String(100))
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]


outbox = cast(Table, OutboxMessage.__table__)
tier_changes = cast(Table, TierChange.__table__)
integrations = cast(Table, Integration.__table__)
sync_states = cast(Table, SyncState.__table__)
email_deliveries = cast(Table, EmailDelivery.__table__)
dead_letters = cast(Table, DeadLetter.__table__)
