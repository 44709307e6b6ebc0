"""What the command tasks share: how they are called, how a batch of them is applied, and how they
ride out infrastructure faults.

A command's own faults end as recorded rejections inside the engine. Only infrastructure faults
reach this layer: they are retried in place, with capped, jittered backoff, for a window well
inside the task's time limit; then the messages go back to the broker for another round. No
retry is a new message with a countdown: it would hold a worker's prefetch slot (RabbitMQ) or
outlive the visibility timeout (Redis), and Celery drops a task whose retry cannot be published.
An outage delays commands; it never turns them into rejections or drops them. A bug raised by one
command of a batch is isolated: its batch-mates are applied one at a time, it is recorded and
answered as a failure, and the worker goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Celery, Task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from celery_batches import SimpleRequest
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from models.domain import names
from models.domain.commands import InvalidCommand
from models.domain.parsing import ParsedItem, parse_command_of
from models.domain.results import FAILED
from models.persistence.faults import INFRASTRUCTURE_FAULTS
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from models.services.command_engine import reject_invalid
from tasks.batching import (
    CommandBatches,
    Verdict,
    is_batch,
    store_failure,
    store_results,
)
from workers.app import app
from workers.db import database
from workers.pii import masked_result_repr
from workers.settings import settings

log = logging.getLogger(__name__)

COMMAND_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "typing": False,
    "acks_late": True,
    "reject_on_worker_lost": True,
}
"""The delivery policy of every task that changes data: acknowledged late, requeued when its
worker dies."""


def worker_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Task[Any, Any]]:
    """The decorator of every task of this worker: its name, its queue as
    ``models.domain.names`` routes it, and the delivery policy."""
    queue = names.queue_of(name)
    if queue is None:
        raise ValueError(f"task {name!r} has no queue in models.domain.names")
    decorate: Callable[[Callable[..., Any]], Task[Any, Any]] = app.task(
        name=name, queue=queue, **COMMAND_TASK_OPTIONS, **options
    )
    return decorate


LIVE_COMMAND_OPTIONS: dict[str, Any] = {
    "base": CommandBatches,
    "leader": names.ADJUST_POINTS_TASK,
}
"""The live commands share the adjust-points task's buffer (see ``tasks.batching``)."""

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
    return result


def command_task(
    task: Task[Any, Any], command_type: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Verdict | dict[str, Any]:
    """The body of a live command task: the worker calls it with a batch of requests; called
    directly with a command, it applies that one command in-process and returns its result."""
    if is_batch(args, kwargs):
        return apply_requests(task.app, args[0])
    return run_command(
        lambda uow, payload: command_engine.apply_one(uow, command_type, payload),
        command_type,
        args,
        kwargs,
    )


def apply_requests(app: Celery, requests: list[SimpleRequest]) -> Verdict:
    """One batch: applied in one transaction, its side effects published once, each result
    stored under its request's task id. Messages to requeue are named in the verdict."""
    items = [_item(request) for request in requests]
    uow = database.unit_of_work()
    try:
        outcomes = riding_out_faults(lambda: _apply_isolating_bugs(uow, items))
    except Reject:
        return {"requeue": [request.id for request in requests]}
    done = [(r, o) for r, o in zip(requests, outcomes, strict=True) if isinstance(o, dict)]
    try:
        store_results(app, [request for request, _ in done], [outcome for _, outcome in done])
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Exception):
                store_failure(app, request, outcome)
    except Exception:
        log.exception("results of %d commands not stored in the result backend", len(requests))
    return {
        "requeue": [],
        "outcomes": {
            request.id: _status(outcome)
            for request, outcome in zip(requests, outcomes, strict=True)
        },
    }


def _status(outcome: dict[str, Any] | Exception) -> str:
    """What Flower shows: the result, masked as every task's is."""
    if isinstance(outcome, Exception):
        return f"{FAILED}: {type(outcome).__name__}: {outcome}"
    return masked_result_repr(outcome)


def _item(request: SimpleRequest) -> ParsedItem:
    command_type = names.command_type_of(str(request.name))
    args, kwargs = tuple(request.args), dict(request.kwargs)
    if len(args) == 1 and not kwargs:
        return parse_command_of(command_type, args[0])
    if not args and list(kwargs) == ["command"]:
        return parse_command_of(command_type, kwargs["command"])
    invalid = InvalidCommand(
        [{"field": "command", "reason": "expected exactly one argument: the command"}]
    )
    return ParsedItem(command_type, {"args": list(args), "kwargs": kwargs}, None, invalid)


def _apply_isolating_bugs(
    uow: UnitOfWork, items: list[ParsedItem]
) -> list[dict[str, Any] | Exception]:
    try:
        return list(command_engine.apply_batch(uow, items))
    except INFRASTRUCTURE_FAULTS:
        raise
    except Exception as bug:
        if len(items) > 1:
            log.warning(
                "a batch of %d raised %r: applying its commands one at a time", len(items), bug
            )
            return [outcome for item in items for outcome in _apply_isolating_bugs(uow, [item])]
        log.exception("command raised; recorded, answered as a failure, not applied")
        command_engine.record_bug(uow, items[0], bug)
        return [bug]


def riding_out_faults(work: Callable[[], ResultT]) -> ResultT:
    """``work`` (a whole unit of work, safe to run again) retried through database faults for
    the fault window; past it, the message is handed back to the broker, requeued."""
    retrying = Retrying(
        retry=retry_if_exception_type(INFRASTRUCTURE_FAULTS),
        wait=wait_random_exponential(multiplier=0.1, max=FAULT_BACKOFF_MAX),
        stop=stop_after_delay(settings().redelivery.fault_retry_window),
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
