"""What the command tasks share: how they are called and how they retry.

A command's own faults end as recorded rejections inside the handler. Only infrastructure faults
reach Celery, and those are retried with capped, jittered backoff for as long as it takes: an
outage delays commands, it never turns them into rejections or drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

import celeryconfig
from models.commands import InvalidCommand
from models.handlers import reject_invalid
from models.unit_of_work import UnitOfWork
from tasks.outbox import dispatch
from workers.db import database

COMMAND_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "queue": celeryconfig.ADJUSTMENTS_QUEUE,
    "typing": False,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": celeryconfig.RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": None,
}

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
        result = handler(uow, args[0])
    elif not args and list(kwargs) == [argument]:
        result = handler(uow, kwargs[argument])
    else:
        invalid = InvalidCommand(
            [{"field": argument, "reason": f"expected exactly one argument: the {argument}"}]
        )
        result = reject_invalid(uow, command_type, {"args": list(args), "kwargs": kwargs}, invalid)
    dispatch(uow.take_dispatchable())
    return result
