"""Points that expire: pure rules, no I/O.

In a shop with an expiry policy, every increase adds to a **lot** that expires ``N`` days after
it was applied, at the UTC midnight that ends that day; every decrease takes from the lots that
expire first. So an account has at most one lot per day, and its lots add up to its balance.
An expiry run takes what expired off the balance into ``expired``; nothing else touches it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from models.domain.adjustments import Points


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    expire_after_days: int
    """Points expire this many days after they were applied."""
    reminder_days: int
    """A reminder goes out this many days before a lot expires (0: none)."""

    def lot_expiry(self, applied_at: datetime) -> datetime:
        """The UTC midnight ending the day ``expire_after_days`` after ``applied_at``."""
        day = (applied_at + timedelta(days=self.expire_after_days)).date()
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=applied_at.tzinfo)

    def reminds_at(self, expires_at: datetime) -> datetime | None:
        if self.reminder_days == 0:
            return None
        return expires_at - timedelta(days=self.reminder_days)


@dataclass(slots=True)
class Lot:
    """Points of one account that expire together; ``id`` is None until it is inserted."""

    expires_at: datetime
    points: int
    id: int | None = None
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Expiration:
    """Wix's ``pointsExpiration``: the next moment points expire, and how many."""

    expires_at: datetime
    points: int


def add_points(lots: list[Lot], points: int, expires_at: datetime) -> None:
    """An increase joins the lot of its expiry moment, or starts one."""
    for lot in lots:
        if lot.expires_at == expires_at:
            lot.points += points
            lot.changed = True
            return
    lots.append(Lot(expires_at, points, changed=True))


def take_points(lots: list[Lot], points: int) -> None:
    """A decrease uses up the lots that expire first. Taking more than the lots hold takes
    them all: the balance, which they add up to, was floored at zero the same way."""
    for lot in sorted(lots, key=lambda lot: lot.expires_at):
        if points == 0:
            return
        taken = min(points, lot.points)
        lot.points -= taken
        lot.changed = True
        points -= taken


def move_lots(
    lots: list[Lot], balance: int, applied: int, policy: ExpiryPolicy, now: datetime
) -> None:
    """The lots after a change of ``applied`` points to a balance of ``balance``. Lots that do
    not add up to the balance (an account created by a batch racing the policy being turned on)
    are made to first: the difference is a lot from now."""
    held = sum(lot.points for lot in lots)
    if held < balance:
        add_points(lots, balance - held, policy.lot_expiry(now))
    elif held > balance:
        take_points(lots, held - balance)
    if applied > 0:
        add_points(lots, applied, policy.lot_expiry(now))
    elif applied < 0:
        take_points(lots, -applied)


def expired_by(lots: list[Lot], as_of: datetime) -> int:
    """Points of the lots that expire at or before ``as_of``."""
    return sum(lot.points for lot in lots if lot.expires_at <= as_of)


def expire(points: Points, lots: list[Lot], as_of: datetime) -> Points | None:
    """The account after its lots expired as of ``as_of`` (and those lots emptied), or None when
    none had. The balance moves into ``expired``; lifetime points stay."""
    total = min(expired_by(lots, as_of), points.balance)
    if total == 0:
        return None
    for lot in lots:
        if lot.expires_at <= as_of and lot.points:
            lot.points = 0
            lot.changed = True
    return replace(
        points,
        balance=points.balance - total,
        expired=points.expired + total,
        revision=points.revision + 1,
    )


def next_expiration(lots: list[Lot] | None) -> Expiration | None:
    """The earliest lot with points: the next to expire (or one due that the next expiry run
    takes)."""
    remaining = [lot for lot in lots or () if lot.points > 0]
    if not remaining:
        return None
    first = min(remaining, key=lambda lot: lot.expires_at)
    return Expiration(first.expires_at, first.points)
