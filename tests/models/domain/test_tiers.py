"""Choosing a tier: the highest one the lifetime points reach."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from models.domain.tiers import TierDefinition, choose_tier

SILVER = TierDefinition(1, "Silver", 100)
GOLD = TierDefinition(2, "Gold", 500)


def test_below_every_threshold_there_is_no_tier() -> None:
    assert choose_tier([SILVER, GOLD], 99) is None


def test_a_threshold_is_reached_when_equalled() -> None:
    assert choose_tier([GOLD, SILVER], 100) == SILVER
    assert choose_tier([SILVER, GOLD], 500) == GOLD


def test_a_tie_goes_to_the_first_name_whatever_the_order() -> None:
    alpha, beta = TierDefinition(3, "Alpha", 100), TierDefinition(4, "Beta", 100)
    assert choose_tier([beta, alpha], 150) == alpha
    assert choose_tier([alpha, beta], 150) == alpha


tier_lists = st.lists(
    st.builds(
        TierDefinition,
        id=st.integers(1, 10**6),
        name=st.text(min_size=1, max_size=5),
        threshold=st.integers(0, 10_000),
    ),
    max_size=8,
)


@given(tiers=tier_lists, lifetime=st.integers(0, 12_000))
def test_the_chosen_tier_is_reached_and_no_reached_tier_is_higher(
    tiers: list[TierDefinition], lifetime: int
) -> None:
    chosen = choose_tier(tiers, lifetime)
    reached = [tier for tier in tiers if tier.threshold <= lifetime]
    if chosen is None:
        assert reached == []
    else:
        assert chosen in reached
        assert chosen.threshold == max(tier.threshold for tier in reached)
