"""Retry pacing and the sync's "nothing new to push" rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models.domain.side_effects import profile_push_needed, retry_delay


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


def push_needed(owed: int | None, current: int, synced: int | None, same_state: bool) -> bool:
    return profile_push_needed(
        owed_revision=owed,
        current_revision=current,
        synced_revision=synced,
        synced_fingerprint="abc" if synced is not None else None,
        current_fingerprint="abc" if same_state else "xyz",
    )


def test_the_newest_owed_sync_pushes_unless_that_state_is_already_there() -> None:
    assert push_needed(owed=7, current=7, synced=6, same_state=False)
    assert push_needed(owed=7, current=7, synced=None, same_state=False)
    assert not push_needed(owed=7, current=7, synced=7, same_state=True)
    assert not push_needed(owed=7, current=7, synced=9, same_state=True)


def test_a_sync_the_account_has_moved_past_leaves_the_push_to_a_newer_one() -> None:
    assert not push_needed(owed=5, current=7, synced=None, same_state=False)


def test_a_changed_state_at_the_same_revision_is_pushed() -> None:
    # e.g. a tier change, which does not move the revision
    assert push_needed(owed=7, current=7, synced=7, same_state=False)
    assert push_needed(owed=None, current=7, synced=7, same_state=False)
