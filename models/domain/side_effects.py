"""Rules for the side effects an adjustment fans out to: which are owed, when a sync has nothing
new to push, and how long to wait before trying a failed one again. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from models.domain.adjustments import Adjustment
from models.domain.names import RECALCULATE_TIER, SEND_POINTS_EARNED_EMAIL


def owed_side_effects(
    adjustment: Adjustment, *, sends_email: bool, shop_has_tiers: bool
) -> list[str]:
    """The side effects an applied points change owes besides the shop's syncs."""
    owed = []
    if shop_has_tiers and adjustment.after.lifetime != adjustment.before.lifetime:
        owed.append(RECALCULATE_TIER)
    if sends_email:
        owed.append(SEND_POINTS_EARNED_EMAIL)
    return owed


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A committed outbox row, ready to be published as ``task_name(outbox_id)``."""

    id: int
    task_name: str


def state_fingerprint(state: Any) -> str:
    """Identifies what a sync pushes, so a push of an unchanged state can be skipped."""
    fields = asdict(state)
    fields.pop("last_activity_at", None)
    encoded = json.dumps(fields, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def profile_push_needed(
    *,
    owed_revision: int | None,
    current_revision: int,
    synced_revision: int | None,
    synced_fingerprint: str | None,
    current_fingerprint: str,
) -> bool:
    """Whether a sync owed at ``owed_revision`` should push the profile now.

    Not when the account has moved on since: every later revision owes its own sync, and the
    newest one pushes. Not when this exact state, at least this new, is already there. So a burst
    of adjustments to one customer collapses into about one push per provider."""
    if owed_revision is not None and owed_revision < current_revision:
        return False
    already_there = (
        synced_revision is not None
        and synced_revision >= current_revision
        and synced_fingerprint == current_fingerprint
    )
    return not already_there


def retry_delay(
    attempts: int,
    *,
    retry_after: float | None,
    base: float,
    cap: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds until the next try: full-jitter exponential backoff capped at ``cap``, and never
    sooner than the provider's own ``retry_after``."""
    backoff = jitter(0, min(cap, base * 2 ** max(attempts - 1, 0)))
    if retry_after is None:
        return backoff
    return max(retry_after, backoff)
