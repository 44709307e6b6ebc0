"""The names this worker is known by outside its process: each task a publisher or the outbox
sends, and the queue it is routed to. The task decorators, Celery's routes, the publisher and the
benchmark all read them here, and outbox rows store the task names."""

from __future__ import annotations

from models.domain.commands import ADJUST_POINTS, COMMAND_MODELS, UPSERT_CUSTOMER

ADJUSTMENTS_QUEUE = "loyalty.adjustments"
MIGRATIONS_QUEUE = "loyalty.migrations"
"""Bulk chunks (merchant migrations) have their own queue and workers, so a migration of millions
of customers never delays a live adjustment."""
TIERS_QUEUE = "loyalty.tiers"
EMAILS_QUEUE = "loyalty.emails"
OUTBOX_QUEUE = "loyalty.outbox"
EXPIRY_QUEUE = "loyalty.expiry"
SYNC_QUEUE_PREFIX = "loyalty.sync."
"""Side effects have one queue each (a provider's sync too), so one outage delays nobody else."""

ADJUST_POINTS_BULK_TASK = "loyalty.adjust_points_bulk"
RECALCULATE_TIER = "loyalty.recalculate_tier"
RECALCULATE_SHOP_TIERS = "loyalty.recalculate_shop_tiers"
SEND_POINTS_EARNED_EMAIL = "loyalty.send_points_earned_email"
SEND_POINTS_EXPIRING_EMAIL = "loyalty.send_points_expiring_email"
EXPIRE_POINTS = "loyalty.expire_points"
RELAY_OUTBOX = "loyalty.relay_outbox"
SYNC_TASK_PREFIX = "loyalty.sync_"
COMMAND_TASK_PREFIX = "loyalty."


def command_task_name(command_type: str) -> str:
    """The live task of a command type: ``loyalty.adjust_points``…"""
    return f"{COMMAND_TASK_PREFIX}{command_type}"


def command_type_of(task_name: str) -> str:
    """The command type a live command task applies."""
    return task_name.removeprefix(COMMAND_TASK_PREFIX)


ADJUST_POINTS_TASK = command_task_name(ADJUST_POINTS)
UPSERT_CUSTOMER_TASK = command_task_name(UPSERT_CUSTOMER)

_QUEUES = {
    **{command_task_name(command_type): ADJUSTMENTS_QUEUE for command_type in COMMAND_MODELS},
    ADJUST_POINTS_BULK_TASK: MIGRATIONS_QUEUE,
    RECALCULATE_TIER: TIERS_QUEUE,
    RECALCULATE_SHOP_TIERS: TIERS_QUEUE,
    SEND_POINTS_EARNED_EMAIL: EMAILS_QUEUE,
    SEND_POINTS_EXPIRING_EMAIL: EMAILS_QUEUE,
    EXPIRE_POINTS: EXPIRY_QUEUE,
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
    return (TIERS_QUEUE, EMAILS_QUEUE, *syncs, OUTBOX_QUEUE, EXPIRY_QUEUE)
