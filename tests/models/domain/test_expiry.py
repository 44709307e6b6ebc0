"""The expiry rules: lots by expiry moment, consumed oldest-expiring first, expired by a run; and,
over random sequences of increases, decreases, reversals and expiry runs, the invariants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from models.domain.adjustments import Adjustment, Points, plan_adjustment
from models.domain.commands import AdjustPoints, ReverseAdjustment
from models.domain.expiry import (
    Expiration,
    ExpiryPolicy,
    Lot,
    expire,
    move_lots,
    next_expiration,
    take_points,
)
from models.domain.reversals import EntryKind, Reversal, ReversibleEntry, plan_reversal

START = datetime(2026, 12, 2, 17, 45, tzinfo=UTC)
POLICY = ExpiryPolicy(expire_after_days=30, reminder_days=14)


def midnight(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


class TestLots:
    def test_a_lot_expires_at_the_midnight_ending_its_last_day(self) -> None:
        assert POLICY.lot_expiry(START) == midnight(2027, 1, 2)
        assert POLICY.lot_expiry(midnight(2026, 12, 2)) == midnight(2027, 1, 2)
        assert POLICY.reminds_at(midnight(2027, 1, 2)) == midnight(2026, 12, 19)
        assert ExpiryPolicy(30, 0).reminds_at(midnight(2027, 1, 2)) is None

    def test_increases_of_one_day_share_a_lot(self) -> None:
        lots: list[Lot] = []

        move_lots(lots, 0, 100, POLICY, START)
        move_lots(lots, 100, 50, POLICY, START + timedelta(hours=3))
        move_lots(lots, 150, 20, POLICY, START + timedelta(days=1))

        assert [(lot.expires_at, lot.points) for lot in lots] == [
            (midnight(2027, 1, 2), 150),
            (midnight(2027, 1, 3), 20),
        ]

    def test_a_decrease_takes_from_the_lots_that_expire_first(self) -> None:
        lots = [
            Lot(midnight(2027, 3, 1), 100, id=3),
            Lot(midnight(2027, 1, 1), 40, id=1),
            Lot(midnight(2027, 2, 1), 60, id=2),
        ]

        take_points(lots, 70)

        assert {lot.id: lot.points for lot in lots} == {1: 0, 2: 30, 3: 100}
        assert [lot.changed for lot in lots] == [False, True, True]

    def test_lots_that_do_not_add_up_to_the_balance_are_made_to_first(self) -> None:
        lots = [Lot(midnight(2027, 1, 1), 40, id=1)]

        move_lots(lots, 100, -10, POLICY, START)

        assert sum(lot.points for lot in lots) == 90
        assert lots[0].points == 30  # the oldest lot gave the 10 points

    def test_an_expiry_run_takes_what_expired_into_expired(self) -> None:
        points = Points(balance=200, lifetime=500, earned=0, adjusted=200, revision=9)
        lots = [Lot(midnight(2027, 1, 1), 120, id=1), Lot(midnight(2027, 2, 1), 80, id=2)]

        after = expire(points, lots, as_of=midnight(2027, 1, 1))

        assert after == replace(points, balance=80, expired=120, revision=10)
        assert [lot.points for lot in lots] == [0, 80]
        assert expire(after, lots, as_of=midnight(2027, 1, 31)) is None

    def test_the_next_expiration_is_the_earliest_lot_with_points(self) -> None:
        lots = [Lot(midnight(2027, 2, 1), 80), Lot(midnight(2027, 1, 1), 0)]

        assert next_expiration(lots) == Expiration(midnight(2027, 2, 1), 80)
        assert next_expiration([]) is None
        assert next_expiration(None) is None


@dataclass
class Shop:
    """One account of a shop with a policy, driven only through the pure rules, with a clock."""

    now: datetime = START
    points: Points = field(default_factory=Points)
    lots: list[Lot] = field(default_factory=list)
    ledger: list[tuple[EntryKind, int]] = field(default_factory=list)
    entries: list[ReversibleEntry] = field(default_factory=list)

    def adjust(self, delta: int) -> None:
        command = AdjustPoints(command_id="a", shop_id="s", customer_id="c", adjustment=delta)
        outcome = plan_adjustment(self.points, command, excluded=False)
        assert isinstance(outcome, Adjustment)
        self._change(EntryKind.ADJUST, outcome)
        self.entries.append(
            ReversibleEntry(uuid.uuid4(), "s", 1, EntryKind.ADJUST, outcome.applied, 0)
        )

    def reverse(self, pick: int, points: int | None) -> None:
        if not self.entries:
            return
        index = pick % len(self.entries)
        command = ReverseAdjustment(
            command_id="r",
            shop_id="s",
            customer_id="c",
            transaction_id=str(uuid.uuid4()),
            points=points,
        )
        outcome = plan_reversal(self.points, self.entries[index], command, excluded=False)
        if not isinstance(outcome, Reversal):
            return
        self._change(EntryKind.REVERSE, outcome.adjustment)
        self.entries[index] = self.entries[index].after(outcome)

    def run_expiry(self) -> None:
        before = self.points
        due = sorted(
            lot.expires_at for lot in self.lots if lot.points and lot.expires_at <= self.now
        )
        after = expire(self.points, self.lots, self.now)
        if after is None:
            assert due == []
            return
        assert after.lifetime == before.lifetime
        self.points = after
        self.ledger.append((EntryKind.EXPIRE, after.balance - before.balance))

    def wait(self, days: int) -> None:
        self.now += timedelta(days=days, hours=days)

    def _change(self, kind: EntryKind, outcome: Adjustment) -> None:
        held = {id(lot): lot.points for lot in self.lots}
        move_lots(self.lots, self.points.balance, outcome.applied, POLICY, self.now)
        if outcome.applied < 0:
            self._check_oldest_taken_first(held)
        self.points = outcome.after
        self.ledger.append((kind, outcome.applied))

    def _check_oldest_taken_first(self, held: dict[int, int]) -> None:
        """Every lot left with points expires no sooner than every lot that gave points."""
        gave = [lot.expires_at for lot in self.lots if held.get(id(lot), 0) > lot.points]
        kept = [lot.expires_at for lot in self.lots if lot.points > 0]
        if gave and kept:
            assert max(gave) <= min(kept)


steps = st.lists(
    st.one_of(
        st.tuples(st.just("adjust"), st.integers(-400, 400).filter(bool)),
        st.tuples(
            st.just("reverse"), st.integers(0, 30), st.one_of(st.none(), st.integers(1, 300))
        ),
        st.tuples(st.just("expire"), st.integers(0, 40)),
    ),
    max_size=40,
)


@given(steps)
def test_any_sequence_keeps_lots_ledger_and_balance_equal(sequence: list[tuple[Any, ...]]) -> None:
    shop = Shop()
    for step in sequence:
        if step[0] == "adjust":
            shop.adjust(step[1])
        elif step[0] == "reverse":
            shop.reverse(step[1], step[2])
        else:
            shop.wait(step[1])
            shop.run_expiry()
        points = shop.points
        assert points.balance >= 0
        assert points.balance == sum(lot.points for lot in shop.lots)
        assert points.balance == sum(applied for _, applied in shop.ledger)
        assert points.balance == points.earned - points.redeemed + points.adjusted - points.expired
        assert points.expired == -sum(a for kind, a in shop.ledger if kind is EntryKind.EXPIRE)
        assert all(lot.points >= 0 for lot in shop.lots)
        assert all(0 <= entry.reversed <= abs(entry.applied) for entry in shop.entries)
        expired_now = [lot for lot in shop.lots if lot.points and lot.expires_at <= shop.now]
        if step[0] == "expire":
            assert expired_now == []
