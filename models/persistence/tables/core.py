"""The points themselves: shops, tiers, accounts, the ledger, and the commands' records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.domain.fields import ID_LENGTH
from models.persistence.tables.base import Base, BigId


class Shop(Base):
    __tablename__ = "shops"
    __table_args__ = (
        CheckConstraint("points_expire_after_days >= 0", name="expiry_not_negative"),
        CheckConstraint("expiry_reminder_days >= 0", name="reminder_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email_from: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The expiry policy: points expire this many days after they were applied (0: never), and
    # customers are reminded this many days before (0: no reminder).
    points_expire_after_days: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    expiry_reminder_days: Mapped[int] = mapped_column(Integer, server_default=text("14"))


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
        CheckConstraint(
            "balance = earned - redeemed + adjusted - expired", name="breakdown_adds_up"
        ),
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
    expired: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
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


shops = cast(Table, Shop.__table__)
tiers = cast(Table, Tier.__table__)
accounts = cast(Table, Account.__table__)
ledger_entries = cast(Table, LedgerEntry.__table__)
processed_commands = cast(Table, ProcessedCommand.__table__)
rejected_messages = cast(Table, RejectedMessage.__table__)
