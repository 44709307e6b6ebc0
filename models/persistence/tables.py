"""The loyalty schema. Alembic migrations in ``migrations/`` are the only way it reaches a database;
these classes describe it for queries and keep the migration honest (a test compares the two)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.domain.commands import ID_LENGTH

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON(),
    }


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email_from: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Tier(Base):
    __tablename__ = "tiers"
    __table_args__ = (
        UniqueConstraint("shop_id", "name"),
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    threshold: Mapped[int] = mapped_column(BigInteger)


class Account(Base):
    """A shop's customer and their points. ``revision`` counts applied commands (Wix's revision)."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("shop_id", "customer_id"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("lifetime >= 0", name="lifetime_not_negative"),
        CheckConstraint("balance = earned - redeemed + adjusted", name="breakdown_adds_up"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="RESTRICT"))
    customer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    excluded: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    balance: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    lifetime: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    earned: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    redeemed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    adjusted: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id", ondelete="SET NULL"))
    revision: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_activity_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerEntry(Base):
    """Append-only audit trail: one row per applied points change, never updated or deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("shop_id", "command_id"),
        Index(None, "account_id", "id"),
        Index(
            None,
            "reverses_transaction_id",
            postgresql_where=text("reverses_transaction_id IS NOT NULL"),
            sqlite_where=text("reverses_transaction_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    command_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    requested: Mapped[int] = mapped_column(BigInteger)
    applied: Mapped[int] = mapped_column(BigInteger)
    balance_before: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    lifetime_before: Mapped[int] = mapped_column(BigInteger)
    lifetime_after: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    actor: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime]
    # adjust, reverse or expire (models.domain.reversals.EntryKind); a reversal links its original.
    kind: Mapped[str] = mapped_column(String(16), server_default=text("'adjust'"))
    reverses_transaction_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ProcessedCommand(Base):
    """The idempotency record: a command's key, the hash of its payload and its final result."""

    __tablename__ = "processed_commands"

    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    command_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    command_type: Mapped[str] = mapped_column(String(32))
    payload_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class RejectedMessage(Base):
    """Rejections that cannot be stored under an idempotency key: input that is not a valid command
    (the key may be missing or malformed) and a key reused with a different payload."""

    __tablename__ = "rejected_messages"
    __table_args__ = (Index(None, "shop_id", "command_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    command_type: Mapped[str] = mapped_column(String(32))
    shop_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    command_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    code: Mapped[str] = mapped_column(String(32))
    result: Mapped[dict[str, Any]]
    payload: Mapped[str] = mapped_column(Text)
    """The payload as received, as JSON; its first ``MAX_REJECTED_PAYLOAD`` characters when
    ``payload_truncated``."""
    payload_truncated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime]


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


# The tables, for Core statements on the hot path.
shops = cast(Table, Shop.__table__)
tiers = cast(Table, Tier.__table__)
accounts = cast(Table, Account.__table__)
ledger_entries = cast(Table, LedgerEntry.__table__)
processed_commands = cast(Table, ProcessedCommand.__table__)
rejected_messages = cast(Table, RejectedMessage.__table__)
outbox = cast(Table, OutboxMessage.__table__)
tier_changes = cast(Table, TierChange.__table__)
integrations = cast(Table, Integration.__table__)
sync_states = cast(Table, SyncState.__table__)
email_deliveries = cast(Table, EmailDelivery.__table__)
dead_letters = cast(Table, DeadLetter.__table__)
