"""How a reversal undoes (part of) an applied adjustment: pure rules, no I/O.

An increase is clawed back, a deduction credited back, never for more in total than the original
applied. A reversal consumes the points it asks for, even when a floor at zero lets fewer of
them move the balance: what was asked stays reversed, as the ledger records asked vs applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from enum import StrEnum

from models.domain.adjustments import Adjustment, Points, excluded_rejection, move_points
from models.domain.commands import ReverseAdjustment
from models.domain.errors import ErrorCode, Rejection


class EntryKind(StrEnum):
    """What wrote a ledger entry (Wix's transaction types, in our words)."""

    ADJUST = "adjust"
    REVERSE = "reverse"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class ReversibleEntry:
    """A ledger entry a reversal names, with what earlier reversals consumed of it."""

    transaction_id: uuid.UUID
    shop_id: str
    account_id: int
    kind: EntryKind
    applied: int
    lifetime_moved: int
    """``lifetime_after - lifetime_before`` of the entry."""
    reversed: int = 0
    """Points consumed by the reversals of it so far."""

    @property
    def remaining(self) -> int:
        return abs(self.applied) - self.reversed

    def after(self, reversal: Reversal) -> ReversibleEntry:
        return replace(self, reversed=self.reversed + reversal.consumed)


@dataclass(frozen=True, slots=True)
class Reversal:
    adjustment: Adjustment
    consumed: int
    """Points of the original this reversal uses up: what it asked for."""
    remaining: int
    """Points of the original still reversible after it."""


def plan_reversal(
    points: Points, original: ReversibleEntry, command: ReverseAdjustment, *, excluded: bool
) -> Reversal | Rejection:
    if excluded:
        return excluded_rejection()
    if original.kind is not EntryKind.ADJUST:
        return Rejection(
            ErrorCode.NOT_REVERSIBLE,
            f"transaction {original.transaction_id} is a {original.kind.value}, "
            "which cannot be reversed",
            {"transaction_id": str(original.transaction_id), "kind": original.kind.value},
        )
    remaining = original.remaining
    if remaining == 0:
        return Rejection(
            ErrorCode.NOTHING_TO_REVERSE,
            f"nothing of transaction {original.transaction_id} is left to reverse",
            {
                "transaction_id": str(original.transaction_id),
                "applied_adjustment": original.applied,
                "reversed": original.reversed,
            },
        )
    asked = remaining if command.points is None else command.points
    if asked > remaining:
        return Rejection(
            ErrorCode.REVERSAL_EXCEEDS_REMAINING,
            f"cannot reverse {asked} points of transaction {original.transaction_id}: "
            f"{remaining} remain reversible",
            {"requested_points": asked, "remaining_reversible": remaining},
        )

    requested = -asked if original.applied > 0 else asked
    moved = move_points(
        points,
        requested,
        command.on_insufficient_points,
        moves_lifetime=original.lifetime_moved != 0,
    )
    if isinstance(moved, Rejection):
        return moved
    return Reversal(moved, consumed=asked, remaining=remaining - asked)
