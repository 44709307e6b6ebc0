"""What the command tasks share: how they are called and how they ride out infrastructure faults.

A command's own faults end as recorded rejections inside the handler. Only infrastructure faults
reach this layer: they are retried in place, with capped, jittered backoff, for a window well
inside the task's time limit; then the message goes back to the broker for another round. No
retry is a new message with a countdown: it would hold a worker's prefetch slot (RabbitMQ) or
outlive the visibility timeout (Redis), and Celery drops a task whose retry cannot be published.
An outage delays commands; it never turns them into rejections or drops them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from celery.exceptions import Reject, SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

import celeryconfig
from models.commands import InvalidCommand
from models.handlers import reject_invalid
from models.unit_of_work import UnitOfWork
from tasks.outbox import dispatch
from workers.db import database
from workers.settings import RedeliverySettings

log = logging.getLogger(__name__)

COMMAND_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "queue": celeryconfig.ADJUSTMENTS_QUEUE,
    "typing": False,
    "acks_late": True,
    "reject_on_worker_lost": True,
}

# Connection refused or lost, serialization failures, deadlocks.
INFRASTRUCTURE_FAULTS = (OperationalError, InterfaceError)
FAULT_BACKOFF_MAX = 5.0

ResultT = TypeVar("ResultT")


def run_command(
    handler: Callable[[UnitOfWork, Any], ResultT],
    command_type: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    argument: str = "command",
) -> ResultT | dict[str, Any]:
    """Commands take one argument (the command object, or a bulk task's list of commands); any
    other call is recorded as invalid and gets that rejection back."""
    uow = database.unit_of_work()
    result: ResultT | dict[str, Any]
    if len(args) == 1 and not kwargs:
        result = riding_out_faults(lambda: handler(uow, args[0]))
    elif not args and list(kwargs) == [argument]:
        result = riding_out_faults(lambda: handler(uow, kwargs[argument]))
    else:
        invalid = InvalidCommand(
            [{"field": argument, "reason": f"expected exactly one argument: the {argument}"}]
        )
        payload = {"args": list(args), "kwargs": kwargs}
        result = riding_out_faults(lambda: reject_invalid(uow, command_type, payload, invalid))
    dispatch(uow.take_dispatchable())
    return result


def riding_out_faults(work: Callable[[], ResultT]) -> ResultT:
    """``work`` (a whole unit of work, safe to run again) retried through database faults for
    the fault window; past it, the message is handed back to the broker, requeued."""
    retrying = Retrying(
        retry=retry_if_exception_type(INFRASTRUCTURE_FAULTS),
        wait=wait_random_exponential(multiplier=0.1, max=FAULT_BACKOFF_MAX),
        stop=stop_after_delay(RedeliverySettings.from_environment().fault_retry_window),
        before_sleep=_log_fault,
        reraise=True,
    )
    try:
        return retrying(work)
    except (*INFRASTRUCTURE_FAULTS, SoftTimeLimitExceeded) as fault:
        # A database that hangs instead of failing runs into the soft time limit: requeue that
        # too, or Celery would acknowledge the message as failed.
        log.warning("database still failing; the message goes back to the queue: %r", fault)
        raise Reject(fault, requeue=True) from fault


def _log_fault(state: RetryCallState) -> None:
    fault = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("database fault, retrying in %.1f s: %s", wait, fault)
