"""Which VIP tier an account belongs in: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TierDefinition:
    id: int
    name: str
    threshold: int


def choose_tier(tiers: Iterable[TierDefinition], lifetime_points: int) -> TierDefinition | None:
    """The highest tier whose threshold the lifetime points reach; ties go to the name that sorts
    first, so the choice never depends on the order the tiers were read in."""
    reached = [tier for tier in tiers if tier.threshold <= lifetime_points]
    if not reached:
        return None
    return min(reached, key=lambda tier: (-tier.threshold, tier.name))
