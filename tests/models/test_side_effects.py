"""Retry pacing and the sync's "nothing new to push" rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models.side_effects import profile_is_current, retry_delay


@given(
    attempts=st.integers(1, 30),
    retry_after=st.none() | st.floats(0, 5000),
    base=st.floats(0.01, 10),
    cap=st.floats(1, 600),
)
def test_a_retry_never_comes_before_retry_after_and_backoff_stays_capped(
    attempts: int, retry_after: float | None, base: float, cap: float
) -> None:
    delay = retry_delay(attempts, retry_after=retry_after, base=base, cap=cap)

    assert delay >= 0
    if retry_after is not None:
        assert delay >= retry_after
        assert delay <= max(retry_after, cap)
    else:
        assert delay <= cap


def test_backoff_grows_exponentially_before_jitter() -> None:
    ceilings = [
        retry_delay(n, retry_after=None, base=1, cap=300, jitter=lambda low, high: high)
        for n in range(1, 11)
    ]
    assert ceilings == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_a_profile_is_current_only_when_the_same_state_at_the_same_revision_was_pushed() -> None:
    assert profile_is_current(7, "abc", 7, "abc")
    assert profile_is_current(9, "abc", 7, "abc")  # a newer push already covers this one
    assert not profile_is_current(6, "abc", 7, "abc")
    assert not profile_is_current(7, "abc", 7, "xyz")  # e.g. the tier changed since
    assert not profile_is_current(None, None, 0, "abc")
