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

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ID_LENGTH = 128


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
    """Append-only audit trail: one row per applied adjustment, never updated or deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("shop_id", "command_id"),
        Index(None, "account_id", "id"),
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

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    command_type: Mapped[str] = mapped_column(String(32))
    shop_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    command_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    code: Mapped[str] = mapped_column(String(32))
    result: Mapped[dict[str, Any]]
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A side effect owed by a committed transaction, written in that same transaction."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_undispatched",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_name: Mapped[str] = mapped_column(String(100))
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]


# The tables, for Core statements on the hot path.
shops = cast(Table, Shop.__table__)
tiers = cast(Table, Tier.__table__)
accounts = cast(Table, Account.__table__)
ledger_entries = cast(Table, LedgerEntry.__table__)
processed_commands = cast(Table, ProcessedCommand.__table__)
rejected_messages = cast(Table, RejectedMessage.__table__)
outbox = cast(Table, OutboxMessage.__table__)
