"""How an adjustment command changes an account: pure rules, no I/O.

The balance never goes below zero: a deduction past it is floored (Mage) or refused (Wix), per
the command. Every manual adjustment lands in ``adjusted`` (and expired points in ``expired``), so
``balance = earned - redeemed + adjusted - expired`` holds as long as it held before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.domain.commands import AdjustPoints
from models.domain.errors import ErrorCode, Rejection


@dataclass(frozen=True, slots=True)
class Points:
    balance: int = 0
    lifetime: int = 0
    earned: int = 0
    redeemed: int = 0
    adjusted: int = 0
    expired: int = 0
    revision: int = 0


@dataclass(frozen=True, slots=True)
class Adjustment:
    requested: int
    """The delta asked for; for a ``balance`` command, the new balance minus the old one."""
    applied: int
    """What really moved the balance, after any floor at zero."""
    before: Points
    after: Points


def plan_adjustment(
    points: Points, command: AdjustPoints, *, excluded: bool
) -> Adjustment | Rejection:
    if excluded:
        return excluded_rejection()
    expected = command.expected_revision
    if expected is not None and expected != points.revision:
        return Rejection(
            ErrorCode.REVISION_CONFLICT,
            f"expected revision {expected} but the account is at revision {points.revision}",
            {"expected_revision": expected, "current_revision": points.revision},
        )

    if command.balance is not None:
        requested = command.balance - points.balance
    else:
        assert command.adjustment is not None  # the command model guarantees one of the two
        requested = command.adjustment

    return move_points(
        points,
        requested,
        command.on_insufficient_points,
        moves_lifetime=command.update_lifetime_points,
        lifetime=command.lifetime_points,
    )


def move_points(
    points: Points,
    requested: int,
    on_insufficient_points: str,
    *,
    moves_lifetime: bool,
    lifetime: int | None = None,
) -> Adjustment | Rejection:
    """The balance moved by ``requested`` into ``adjusted``: floored at zero, or refused when
    ``on_insufficient_points`` says "reject". Lifetime points are set to ``lifetime`` when given,
    else moved by what was applied when ``moves_lifetime`` (never below zero)."""
    target = points.balance + requested
    if target < 0 and on_insufficient_points == "reject":
        return Rejection(
            ErrorCode.INSUFFICIENT_POINTS,
            f"cannot deduct {-requested} points from a balance of {points.balance}",
            {"balance": points.balance, "requested_adjustment": requested},
        )
    applied = max(target, 0) - points.balance
    if lifetime is None:
        lifetime = max(points.lifetime + applied, 0) if moves_lifetime else points.lifetime
    after = replace(
        points,
        balance=points.balance + applied,
        lifetime=lifetime,
        adjusted=points.adjusted + applied,
        revision=points.revision + 1,
    )
    return Adjustment(requested=requested, applied=applied, before=points, after=after)


def excluded_rejection() -> Rejection:
    return Rejection(ErrorCode.CUSTOMER_EXCLUDED, "customer is excluded from the loyalty program")


def earns_email(adjustment: Adjustment, command: AdjustPoints, email: str | None) -> bool:
    """The points-earned email goes out for increases only, when asked for and deliverable."""
    return adjustment.applied > 0 and command.send_email and bool(email)
