"""The names this worker is known by outside its process: each task a publisher or the outbox
sends, and the queue it is routed to. The task decorators, Celery's routes, the publisher and the
benchmark all read them here, and outbox rows store the task names."""

from __future__ import annotations

ADJUSTMENTS_QUEUE = "loyalty.adjustments"
MIGRATIONS_QUEUE = "loyalty.migrations"
"""Bulk chunks (merchant migrations) have their own queue and workers, so a migration of millions
of customers never delays a live adjustment."""
TIERS_QUEUE = "loyalty.tiers"
EMAILS_QUEUE = "loyalty.emails"
OUTBOX_QUEUE = "loyalty.outbox"
SYNC_QUEUE_PREFIX = "loyalty.sync."
"""Side effects have one queue each (a provider's sync too), so one outage delays nobody else."""

ADJUST_POINTS_TASK = "loyalty.adjust_points"
UPSERT_CUSTOMER_TASK = "loyalty.upsert_customer"
ADJUST_POINTS_BULK_TASK = "loyalty.adjust_points_bulk"
RECALCULATE_TIER = "loyalty.recalculate_tier"
RECALCULATE_SHOP_TIERS = "loyalty.recalculate_shop_tiers"
SEND_POINTS_EARNED_EMAIL = "loyalty.send_points_earned_email"
RELAY_OUTBOX = "loyalty.relay_outbox"
SYNC_TASK_PREFIX = "loyalty.sync_"

_QUEUES = {
    ADJUST_POINTS_TASK: ADJUSTMENTS_QUEUE,
    UPSERT_CUSTOMER_TASK: ADJUSTMENTS_QUEUE,
    ADJUST_POINTS_BULK_TASK: MIGRATIONS_QUEUE,
    RECALCULATE_TIER: TIERS_QUEUE,
    RECALCULATE_SHOP_TIERS: TIERS_QUEUE,
    SEND_POINTS_EARNED_EMAIL: EMAILS_QUEUE,
    RELAY_OUTBOX: OUTBOX_QUEUE,
}


def sync_task_name(provider: str) -> str:
    return f"{SYNC_TASK_PREFIX}{provider}"


def sync_queue(provider: str) -> str:
    return f"{SYNC_QUEUE_PREFIX}{provider}"


def is_sync(task_name: str) -> bool:
    return task_name.startswith(SYNC_TASK_PREFIX)


def queue_of(task_name: str) -> str | None:
    """The queue a task of this worker is routed to; None for a name that is not one of them."""
    if is_sync(task_name):
        return sync_queue(task_name.removeprefix(SYNC_TASK_PREFIX))
    return _QUEUES.get(task_name)


def side_effect_queues(providers: tuple[str, ...]) -> tuple[str, ...]:
    """Every queue a side-effect worker serves, given the providers it syncs to."""
    syncs = tuple(sync_queue(provider) for provider in providers)
    return (TIERS_QUEUE, EMAILS_QUEUE, *syncs, OUTBOX_QUEUE)
