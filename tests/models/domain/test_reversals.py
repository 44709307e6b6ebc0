"""The reversal rules: what a reversal moves, what it consumes of its original, and when it is
refused; and, over random sequences of adjustments and reversals, the ledger's invariants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.domain.adjustments import Adjustment, Points, plan_adjustment
from models.domain.commands import AdjustPoints, ReverseAdjustment
from models.domain.errors import ErrorCode, Rejection
from models.domain.reversals import EntryKind, Reversal, ReversibleEntry, plan_reversal


def reverse(**fields: Any) -> ReverseAdjustment:
    return ReverseAdjustment(
        command_id="r", shop_id="s", customer_id="c", transaction_id=str(uuid.uuid4()), **fields
    )


def entry(applied: int, *, lifetime_moved: int | None = None, **fields: Any) -> ReversibleEntry:
    return ReversibleEntry(
        transaction_id=uuid.uuid4(),
        shop_id="s",
        account_id=1,
        kind=fields.pop("kind", EntryKind.ADJUST),
        applied=applied,
        lifetime_moved=applied if lifetime_moved is None else lifetime_moved,
        **fields,
    )


def reversed_ok(outcome: Reversal | Rejection) -> Reversal:
    assert isinstance(outcome, Reversal), outcome
    return outcome


def refused(outcome: Reversal | Rejection) -> ErrorCode:
    assert isinstance(outcome, Rejection), outcome
    return outcome.code


class TestWhatMoves:
    def test_an_increase_is_clawed_back_with_its_lifetime_points(self) -> None:
        points = Points(balance=500, lifetime=900, adjusted=500, revision=3)

        outcome = reversed_ok(
            plan_reversal(points, entry(300), reverse(points=120), excluded=False)
        )

        assert outcome.adjustment.requested == outcome.adjustment.applied == -120
        assert outcome.adjustment.after == Points(
            balance=380, lifetime=780, adjusted=380, revision=4
        )
        assert (outcome.consumed, outcome.remaining) == (120, 180)

    def test_a_deduction_is_credited_back(self) -> None:
        points = Points(balance=50, lifetime=100, adjusted=50, revision=2)

        outcome = reversed_ok(plan_reversal(points, entry(-80), reverse(), excluded=False))

        assert outcome.adjustment.applied == 80
        assert outcome.adjustment.after.balance == 130
        assert outcome.adjustment.after.lifetime == 180
        assert outcome.remaining == 0

    def test_lifetime_points_stay_when_the_original_left_them(self) -> None:
        points = Points(balance=50, lifetime=100, adjusted=50)

        outcome = reversed_ok(
            plan_reversal(points, entry(-80, lifetime_moved=0), reverse(), excluded=False)
        )

        assert outcome.adjustment.after.lifetime == 100

    def test_a_floored_claw_back_consumes_what_it_asked_for(self) -> None:
        points = Points(balance=30, lifetime=40, adjusted=30)

        outcome = reversed_ok(plan_reversal(points, entry(100), reverse(points=70), excluded=False))

        assert (outcome.adjustment.requested, outcome.adjustment.applied) == (-70, -30)
        assert outcome.adjustment.after.balance == 0
        assert outcome.adjustment.after.lifetime == 10
        assert (outcome.consumed, outcome.remaining) == (70, 30)

    def test_without_points_everything_still_reversible_is_reversed(self) -> None:
        original = entry(100, reversed=35)

        outcome = reversed_ok(
            plan_reversal(Points(balance=100, adjusted=100), original, reverse(), excluded=False)
        )

        assert outcome.adjustment.applied == -65
        assert original.after(outcome).remaining == 0


class TestRefusals:
    def test_a_claw_back_below_zero_is_refused_when_asked_to(self) -> None:
        outcome = plan_reversal(
            Points(balance=10, adjusted=10),
            entry(100),
            reverse(points=50, on_insufficient_points="reject"),
            excluded=False,
        )

        assert refused(outcome) is ErrorCode.INSUFFICIENT_POINTS

    def test_more_than_remains_is_refused_naming_what_remains(self) -> None:
        outcome = plan_reversal(
            Points(balance=100), entry(100, reversed=60), reverse(points=41), excluded=False
        )

        assert refused(outcome) is ErrorCode.REVERSAL_EXCEEDS_REMAINING
        assert isinstance(outcome, Rejection)
        assert outcome.details == {"requested_points": 41, "remaining_reversible": 40}

    @pytest.mark.parametrize(
        "original", [entry(100, reversed=100), entry(0), entry(-40, reversed=40)]
    )
    def test_nothing_left_is_a_conflict(self, original: ReversibleEntry) -> None:
        outcome = plan_reversal(Points(balance=100), original, reverse(), excluded=False)

        assert refused(outcome) is ErrorCode.NOTHING_TO_REVERSE

    @pytest.mark.parametrize("kind", [EntryKind.REVERSE, EntryKind.EXPIRE])
    def test_a_reversal_or_an_expiry_cannot_be_reversed(self, kind: EntryKind) -> None:
        outcome = plan_reversal(
            Points(balance=100), entry(-10, kind=kind), reverse(), excluded=False
        )

        assert refused(outcome) is ErrorCode.NOT_REVERSIBLE

    def test_an_excluded_customer_is_refused(self) -> None:
        outcome = plan_reversal(Points(balance=100), entry(100), reverse(), excluded=True)

        assert refused(outcome) is ErrorCode.CUSTOMER_EXCLUDED


@dataclass
class Account:
    """An account and its ledger, driven only through the pure rules."""

    points: Points = field(default_factory=Points)
    ledger: list[tuple[EntryKind, int, int]] = field(default_factory=list)
    """(kind, asked, applied) of every entry, in order."""
    entries: list[ReversibleEntry] = field(default_factory=list)

    def adjust(self, delta: int, floor: bool) -> None:
        command = AdjustPoints(
            command_id="a",
            shop_id="s",
            customer_id="c",
            adjustment=delta,
            on_insufficient_points="floor" if floor else "reject",
        )
        outcome = plan_adjustment(self.points, command, excluded=False)
        if isinstance(outcome, Adjustment):
            self._record(EntryKind.ADJUST, outcome)
            self.entries.append(entry(outcome.applied, lifetime_moved=outcome.applied))

    def reverse(self, pick: int, points: int | None, floor: bool) -> None:
        if not self.entries:
            return
        index = pick % len(self.entries)
        original = self.entries[index]
        command = reverse(points=points, on_insufficient_points="floor" if floor else "reject")
        outcome = plan_reversal(self.points, original, command, excluded=False)
        if isinstance(outcome, Rejection):
            if points is not None and points > original.remaining > 0:
                assert outcome.code is ErrorCode.REVERSAL_EXCEEDS_REMAINING
            return
        self._record(EntryKind.REVERSE, outcome.adjustment)
        self.entries[index] = original.after(outcome)

    def _record(self, kind: EntryKind, outcome: Adjustment) -> None:
        assert outcome.before == self.points
        self.points = outcome.after
        self.ledger.append((kind, outcome.requested, outcome.applied))


steps = st.lists(
    st.one_of(
        st.tuples(st.just("adjust"), st.integers(-500, 500).filter(bool), st.booleans()),
        st.tuples(
            st.just("reverse"),
            st.integers(0, 50),
            st.one_of(st.none(), st.integers(1, 600)),
            st.booleans(),
        ),
    ),
    max_size=40,
)


@given(steps)
def test_any_sequence_keeps_the_ledger_and_never_reverses_more_than_applied(
    sequence: list[tuple[Any, ...]],
) -> None:
    account = Account()
    for step in sequence:
        if step[0] == "adjust":
            account.adjust(step[1], step[2])
        else:
            account.reverse(step[1], step[2], step[3])
        points = account.points
        assert points.balance >= 0
        assert points.lifetime >= 0
        assert points.balance == sum(applied for _, _, applied in account.ledger)
        assert points.balance == points.earned - points.redeemed + points.adjusted
        assert points.revision == len(account.ledger)
        for original in account.entries:
            assert 0 <= original.reversed <= abs(original.applied)
