"""Property-based tests of the pure adjustment rules (no database, no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.domain.adjustments import Adjustment, Points, earns_email, plan_adjustment
from models.domain.commands import AdjustPoints
from models.domain.errors import ErrorCode, Rejection
from models.domain.fields import MAX_ADJUSTMENT, MAX_BALANCE

# --- strategies ---------------------------------------------------------------------------------

adjustments = st.integers(-MAX_ADJUSTMENT, MAX_ADJUSTMENT).filter(lambda n: n != 0)
small_adjustments = st.integers(-500, 500).filter(lambda n: n != 0)
target_balances = st.integers(0, MAX_BALANCE)
policies = st.sampled_from(["floor", "reject"])


@st.composite
def accounts(draw: st.DrawFn) -> Points:
    """Any consistent account: balance >= 0 and balance == earned - redeemed + adjusted."""
    balance = draw(st.integers(0, 50_000_000))
    earned = draw(st.integers(0, 50_000_000))
    redeemed = draw(st.integers(0, 50_000_000))
    return Points(
        balance=balance,
        lifetime=draw(st.integers(0, 100_000_000)),
        earned=earned,
        redeemed=redeemed,
        adjusted=balance - earned + redeemed,
        revision=draw(st.integers(0, 10_000)),
    )


def command(**fields: Any) -> AdjustPoints:
    payload: dict[str, Any] = {"command_id": "cmd-1", "shop_id": "shop-1", "customer_id": "cust-1"}
    payload.update(fields)
    return AdjustPoints.model_validate(payload)


@st.composite
def commands(
    draw: st.DrawFn,
    amounts: st.SearchStrategy[int] = adjustments,
    balances: st.SearchStrategy[int] = target_balances,
) -> AdjustPoints:
    """A valid command: a delta, an absolute balance, or both (the balance wins)."""
    kind = draw(st.sampled_from(["adjustment", "balance", "both"]))
    fields: dict[str, Any] = {
        "command_id": draw(st.uuids()).hex,
        "update_lifetime_points": draw(st.booleans()),
        "send_email": draw(st.booleans()),
        "on_insufficient_points": draw(policies),
    }
    if kind in ("adjustment", "both"):
        fields["adjustment"] = draw(amounts)
    if kind in ("balance", "both"):
        fields["balance"] = draw(balances)
    return command(**fields)


def applied(result: Adjustment | Rejection) -> Adjustment:
    assert isinstance(result, Adjustment), f"expected an applied adjustment, got {result!r}"
    return result


def rejected(result: Adjustment | Rejection, code: ErrorCode) -> Rejection:
    assert isinstance(result, Rejection), f"expected a rejection {code}, got {result!r}"
    assert result.code is code
    return result


# --- single command -----------------------------------------------------------------------------


class TestBalanceNeverNegative:
    @given(points=accounts(), cmd=commands())
    def test_any_command_leaves_a_non_negative_balance(self, points: Points, cmd: AdjustPoints):
        result = plan_adjustment(points, cmd, excluded=False)
        if isinstance(result, Adjustment):
            assert result.after.balance >= 0
            assert result.after.balance == points.balance + result.applied
        else:
            assert result.code is ErrorCode.INSUFFICIENT_POINTS


class TestFloor:
    @given(points=accounts(), delta=adjustments)
    def test_deduction_past_zero_is_floored(self, points: Points, delta: int):
        result = applied(
            plan_adjustment(
                points, command(adjustment=delta, on_insufficient_points="floor"), excluded=False
            )
        )
        assert result.requested == delta
        if points.balance + delta < 0:
            assert result.applied == -points.balance
            assert result.after.balance == 0
        else:
            assert result.applied == delta
            assert result.after.balance == points.balance + delta

    def test_floor_is_the_default_policy(self):
        result = applied(
            plan_adjustment(
                Points(balance=30, adjusted=30), command(adjustment=-100), excluded=False
            )
        )
        assert (result.requested, result.applied, result.after.balance) == (-100, -30, 0)

    def test_deduction_from_empty_account_applies_nothing_but_still_counts(self):
        result = applied(plan_adjustment(Points(), command(adjustment=-5), excluded=False))
        assert result.applied == 0
        assert result.after.balance == 0
        assert result.after.revision == 1


class TestReject:
    @given(points=accounts(), delta=adjustments)
    def test_rejected_exactly_when_balance_would_go_negative(self, points: Points, delta: int):
        result = plan_adjustment(
            points, command(adjustment=delta, on_insufficient_points="reject"), excluded=False
        )
        if points.balance + delta < 0:
            rejection = rejected(result, ErrorCode.INSUFFICIENT_POINTS)
            assert rejection.code.http_status == 422
            assert rejection.details == {"balance": points.balance, "requested_adjustment": delta}
        else:
            result = applied(result)
            assert result.applied == result.requested == delta
            assert result.after.balance == points.balance + delta

    def test_deducting_the_whole_balance_is_not_insufficient(self):
        result = applied(
            plan_adjustment(
                Points(balance=40, adjusted=40),
                command(adjustment=-40, on_insufficient_points="reject"),
                excluded=False,
            )
        )
        assert result.after.balance == 0

    def test_deducting_one_more_than_the_balance_is_insufficient(self):
        rejected(
            plan_adjustment(
                Points(balance=40, adjusted=40),
                command(adjustment=-41, on_insufficient_points="reject"),
                excluded=False,
            ),
            ErrorCode.INSUFFICIENT_POINTS,
        )


class TestBalanceCommand:
    @given(points=accounts(), target=target_balances, policy=policies)
    def test_balance_sets_the_balance(self, points: Points, target: int, policy: str):
        cmd = command(balance=target, on_insufficient_points=policy)
        result = applied(plan_adjustment(points, cmd, excluded=False))
        assert result.after.balance == target
        assert result.requested == result.applied == target - points.balance

    @given(points=accounts(), target=target_balances, delta=adjustments, policy=policies)
    def test_balance_wins_over_adjustment(
        self, points: Points, target: int, delta: int, policy: str
    ):
        cmd = command(balance=target, adjustment=delta, on_insufficient_points=policy)
        result = applied(plan_adjustment(points, cmd, excluded=False))
        assert result.after.balance == target
        assert result.requested == target - result.before.balance == target - points.balance


class TestLifetime:
    @given(points=accounts(), cmd=commands())
    def test_lifetime_moves_by_applied_delta_only_when_asked(
        self, points: Points, cmd: AdjustPoints
    ):
        result = plan_adjustment(points, cmd, excluded=False)
        if isinstance(result, Rejection):
            return
        assert result.after.lifetime >= 0
        if cmd.update_lifetime_points:
            assert result.after.lifetime == max(points.lifetime + result.applied, 0)
        else:
            assert result.after.lifetime == points.lifetime

    def test_lifetime_never_goes_below_zero(self):
        points = Points(balance=100, lifetime=10, adjusted=100)
        result = applied(plan_adjustment(points, command(adjustment=-100), excluded=False))
        assert result.after.lifetime == 0

    def test_lifetime_follows_the_floored_delta_not_the_requested_one(self):
        points = Points(balance=30, lifetime=500, adjusted=30)
        result = applied(plan_adjustment(points, command(adjustment=-100), excluded=False))
        assert result.after.lifetime == 470


class TestBookkeeping:
    @given(points=accounts(), cmd=commands())
    def test_revision_increments_by_exactly_one(self, points: Points, cmd: AdjustPoints):
        result = plan_adjustment(points, cmd, excluded=False)
        if isinstance(result, Adjustment):
            assert result.after.revision == points.revision + 1

    @given(points=accounts(), cmd=commands())
    def test_manual_adjustments_land_in_adjusted(self, points: Points, cmd: AdjustPoints):
        result = plan_adjustment(points, cmd, excluded=False)
        if isinstance(result, Rejection):
            return
        assert result.before == points
        assert result.after.adjusted == points.adjusted + result.applied
        assert result.after.earned == points.earned
        assert result.after.redeemed == points.redeemed
        after = result.after
        assert after.balance == after.earned - after.redeemed + after.adjusted


class TestGuards:
    @given(points=accounts(), cmd=commands(), expected=st.none() | st.integers(0, 20_000))
    def test_excluded_customer_is_always_refused(
        self, points: Points, cmd: AdjustPoints, expected: int | None
    ):
        cmd = cmd.model_copy(update={"expected_revision": expected})
        rejection = rejected(
            plan_adjustment(points, cmd, excluded=True), ErrorCode.CUSTOMER_EXCLUDED
        )
        assert rejection.code.http_status == 403

    @given(points=accounts(), cmd=commands(), offset=st.integers(1, 1_000))
    def test_revision_mismatch_is_a_conflict(self, points: Points, cmd: AdjustPoints, offset: int):
        expected = points.revision + offset
        cmd = cmd.model_copy(update={"expected_revision": expected})
        rejection = rejected(
            plan_adjustment(points, cmd, excluded=False), ErrorCode.REVISION_CONFLICT
        )
        assert rejection.code.http_status == 409
        assert rejection.details == {
            "expected_revision": expected,
            "current_revision": points.revision,
        }

    def test_stale_revision_is_a_conflict(self):
        points = Points(balance=10, adjusted=10, revision=5)
        rejected(
            plan_adjustment(points, command(adjustment=1, expected_revision=4), excluded=False),
            ErrorCode.REVISION_CONFLICT,
        )

    @given(points=accounts(), cmd=commands(amounts=st.integers(1, MAX_ADJUSTMENT)))
    def test_matching_revision_is_applied(self, points: Points, cmd: AdjustPoints):
        cmd = cmd.model_copy(update={"expected_revision": points.revision})
        result = applied(plan_adjustment(points, cmd, excluded=False))
        assert result.after.revision == points.revision + 1


# --- sequences ----------------------------------------------------------------------------------


class TestSequences:
    @given(
        cmds=st.lists(
            commands(amounts=small_adjustments, balances=st.integers(0, 2_000)) | commands(),
            min_size=1,
            max_size=40,
        ),
        revisions=st.lists(st.none() | st.integers(0, 40), min_size=40, max_size=40),
    )
    def test_ledger_sums_to_balance_and_breakdown_holds(
        self, cmds: list[AdjustPoints], revisions: list[int | None]
    ):
        points = Points()
        ledger: list[int] = []
        for cmd, expected in zip(cmds, revisions, strict=False):
            cmd = cmd.model_copy(update={"expected_revision": expected})
            result = plan_adjustment(points, cmd, excluded=False)
            if isinstance(result, Rejection):
                assert result.code in (ErrorCode.INSUFFICIENT_POINTS, ErrorCode.REVISION_CONFLICT)
                continue
            assert result.before == points
            ledger.append(result.applied)
            points = result.after
            assert points.balance >= 0
            assert points.lifetime >= 0
            assert points.balance == points.earned - points.redeemed + points.adjusted
            assert points.balance == sum(ledger)
        assert points.balance == sum(ledger)
        assert points.revision == len(ledger)


# --- email --------------------------------------------------------------------------------------


class TestEarnsEmail:
    @pytest.mark.parametrize(
        ("start", "fields", "email", "expected"),
        [
            pytest.param(0, {"adjustment": 50}, "a@example.com", True, id="increase-sends"),
            pytest.param(10, {"balance": 60}, "a@example.com", True, id="balance-increase-sends"),
            pytest.param(100, {"adjustment": -50}, "a@example.com", False, id="decrease-silent"),
            pytest.param(
                100, {"balance": 60}, "a@example.com", False, id="balance-decrease-silent"
            ),
            pytest.param(60, {"balance": 60}, "a@example.com", False, id="no-change-silent"),
            pytest.param(0, {"adjustment": -50}, "a@example.com", False, id="floored-to-zero"),
            pytest.param(
                0,
                {"adjustment": 50, "send_email": False},
                "a@example.com",
                False,
                id="send-email-false",
            ),
            pytest.param(0, {"adjustment": 50}, None, False, id="no-email"),
            pytest.param(0, {"adjustment": 50}, "", False, id="empty-email"),
        ],
    )
    def test_email_rule(
        self, start: int, fields: dict[str, Any], email: str | None, expected: bool
    ):
        cmd = command(**fields)
        result = applied(
            plan_adjustment(Points(balance=start, adjusted=start), cmd, excluded=False)
        )
        assert earns_email(result, cmd, email) is expected

    @given(points=accounts(), cmd=commands(), email=st.none() | st.just("") | st.emails())
    def test_email_only_for_increases_when_asked_and_deliverable(
        self, points: Points, cmd: AdjustPoints, email: str | None
    ):
        result = plan_adjustment(points, cmd, excluded=False)
        if isinstance(result, Rejection):
            return
        sends = earns_email(result, cmd, email)
        if result.applied <= 0 or not cmd.send_email or not email:
            assert sends is False
        else:
            assert sends is True
