"""The tier recalculation tasks (``models.services.tiers``); a shop's run gets its time share
here."""

from __future__ import annotations

from typing import Any

from celery import Task

from models.domain.names import RECALCULATE_SHOP_TIERS, RECALCULATE_TIER
from models.services import tiers
from tasks.side_effects import perform, side_effect_task
from workers.db import database
from workers.settings import settings


@side_effect_task(RECALCULATE_TIER)
def recalculate_tier(self: Task[Any, Any], outbox_id: int) -> str:
    return perform(
        outbox_id,
        lambda row_id: tiers.recalculate_account(database.unit_of_work(), row_id),
    )


@side_effect_task(RECALCULATE_SHOP_TIERS)
def recalculate_shop_tiers(self: Task[Any, Any], outbox_id: int) -> str:
    return perform(outbox_id, _recalculate_shop)


def _recalculate_shop(outbox_id: int) -> str:
    """A run takes at most half the fault window, then leaves the rest to the next run."""
    budget = settings().redelivery.fault_retry_window / 2
    return tiers.recalculate_shop(database.unit_of_work(), outbox_id, budget=budget)
