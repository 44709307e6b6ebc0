"""Points that expire: the lots of the accounts of shops with an expiry policy, and the reminders
sent before a lot expires."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.domain.fields import ID_LENGTH
from models.persistence.tables.base import Base, BigId


class PointLot(Base):
    """Points of one account that expire together, at a UTC midnight. Every increase of an
    account of a shop with an expiry policy adds to a lot, every decrease takes from the lots
    that expire first; the lots of an account add up to its balance."""

    __tablename__ = "point_lots"
    __table_args__ = (
        UniqueConstraint("account_id", "expires_at"),
        CheckConstraint("points > 0", name="points_positive"),
        Index(None, "shop_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    expires_at: Mapped[datetime]
    points: Mapped[int] = mapped_column(BigInteger)
    """What is left of the lot; a lot used up or expired is deleted."""


class ExpiryReminder(Base):
    """One "points expiring soon" reminder per account and expiry moment: its email and the
    providers' event are owed once, whoever runs the expiry task and however often."""

    __tablename__ = "expiry_reminders"
    __table_args__ = (UniqueConstraint("account_id", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    shop_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    expires_at: Mapped[datetime]
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


point_lots = cast(Table, PointLot.__table__)
expiry_reminders = cast(Table, ExpiryReminder.__table__)
