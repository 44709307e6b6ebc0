"""Publishing commands from Python services: exactly the message any Celery client sends.

Task ``loyalty.adjust_points``, ``loyalty.reverse_adjustment`` or ``loyalty.upsert_customer``, queue
``loyalty.adjustments``, JSON, one positional argument: the command object. ``publish_adjustment``,
``publish_reversal`` and ``publish_customer_upsert`` validate the command first, so a bad one fails
here (``InvalidCommand`` naming each field) instead of as a rejection later; ``publish`` sends a
payload as it is.

Publishing is safe to rely on: a lost broker connection is retried (``task_publish_retry_policy``)
and on RabbitMQ every publish waits for the broker's confirm (``confirm_publish``), so a message
the broker refuses raises instead of vanishing. Argument reprs are masked (``workers.pii``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, overload

from celery import Celery
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import BaseModel

from models.domain.commands import (
    ADJUST_POINTS,
    COMMAND_MODELS,
    REVERSE_ADJUSTMENT,
    UPSERT_CUSTOMER,
    AdjustPoints,
    Command,
    CommandT,
    ReverseAdjustment,
    UpsertCustomer,
    parse_command,
)
from models.domain.names import ADJUSTMENTS_QUEUE, command_task_name
from workers.app import app as default_app
from workers.pii import masked_repr

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a result when ``wait=True``."""
CONFIRM_TIMEOUT = 10.0
"""Seconds a RabbitMQ publish waits for the broker's confirm before it raises."""


class PublishError(Exception):
    """The command was not published: the broker stayed unreachable through every retry, refused
    the message (RabbitMQ's negative confirm) or never confirmed it. Publishing it again is safe:
    under the same ``command_id`` it is applied once."""


class CommandTimeout(ResultTimeout):
    """No result arrived in time. The command is still queued and may be applied later: resend it
    under the same ``command_id`` to get its result (it is never applied twice)."""

    def __init__(self, task_name: str, command_id: str, task_id: str, timeout: float) -> None:
        super().__init__(
            f"no result for {task_name} command {command_id!r} (task {task_id}) within "
            f"{timeout:g}s: is a worker consuming {ADJUSTMENTS_QUEUE}?"
        )
        self.command_id = command_id
        self.task_id = task_id


def publish(task_name: str, payload: Any, *, app: Celery | None = None) -> AsyncResult[Any]:
    """Send ``payload`` as the one argument of ``task_name``, without validating it (the worker
    records an invalid command as rejected): for tools that must send what any publisher might.
    A pydantic model is sent as its JSON dump."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json", exclude_none=True)
    celery = app or default_app
    args = [payload]
    try:
        return celery.send_task(
            task_name,
            args=args,
            queue=ADJUSTMENTS_QUEUE,
            routing_key=ADJUSTMENTS_QUEUE,
            serializer="json",
            argsrepr=masked_repr(args),
            kwargsrepr="{}",
            retry=True,
            retry_policy=celery.conf.task_publish_retry_policy,
            confirm_timeout=CONFIRM_TIMEOUT,
        )
    except KombuOperationalError as failure:
        cause = failure.__cause__ or failure
        command_id = payload.get("command_id") if isinstance(payload, dict) else None
        raise PublishError(
            f"{task_name} command {command_id!r} was not published: "
            f"{type(cause).__name__}: {cause}".rstrip(": ")
        ) from failure


@overload
def publish_adjustment(
    command: AdjustPoints | Mapping[str, Any],
    *,
    wait: Literal[False] = False,
    app: Celery | None = None,
) -> AsyncResult[Any]: ...
@overload
def publish_adjustment(
    command: AdjustPoints | Mapping[str, Any],
    *,
    wait: Literal[True],
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> dict[str, Any]: ...
def publish_adjustment(
    command: AdjustPoints | Mapping[str, Any],
    *,
    wait: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> AsyncResult[Any] | dict[str, Any]:
    """Publish an adjustment. With ``wait=True``, return its result (applied or rejected), or
    raise ``CommandTimeout`` after ``timeout`` seconds."""
    return publish_command(ADJUST_POINTS, command, wait=wait, timeout=timeout, app=app)


@overload
def publish_reversal(
    command: ReverseAdjustment | Mapping[str, Any],
    *,
    wait: Literal[False] = False,
    app: Celery | None = None,
) -> AsyncResult[Any]: ...
@overload
def publish_reversal(
    command: ReverseAdjustment | Mapping[str, Any],
    *,
    wait: Literal[True],
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> dict[str, Any]: ...
def publish_reversal(
    command: ReverseAdjustment | Mapping[str, Any],
    *,
    wait: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> AsyncResult[Any] | dict[str, Any]:
    """Publish the reversal of an applied adjustment; ``wait`` and ``timeout`` as for
    adjustments."""
    return publish_command(REVERSE_ADJUSTMENT, command, wait=wait, timeout=timeout, app=app)


@overload
def publish_customer_upsert(
    command: UpsertCustomer | Mapping[str, Any],
    *,
    wait: Literal[False] = False,
    app: Celery | None = None,
) -> AsyncResult[Any]: ...
@overload
def publish_customer_upsert(
    command: UpsertCustomer | Mapping[str, Any],
    *,
    wait: Literal[True],
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> dict[str, Any]: ...
def publish_customer_upsert(
    command: UpsertCustomer | Mapping[str, Any],
    *,
    wait: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> AsyncResult[Any] | dict[str, Any]:
    """Publish a customer create-or-update; ``wait`` and ``timeout`` as for adjustments."""
    return publish_command(UPSERT_CUSTOMER, command, wait=wait, timeout=timeout, app=app)


def publish_command(
    command_type: str,
    command: Command | Mapping[str, Any],
    *,
    wait: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    app: Celery | None = None,
) -> AsyncResult[Any] | dict[str, Any]:
    """Publish a command of any type of ``COMMAND_MODELS`` (``publish_adjustment``,
    ``publish_reversal`` and ``publish_customer_upsert`` are this, typed); ``wait`` and
    ``timeout`` as for them."""
    model = COMMAND_MODELS.get(command_type)
    if model is None:
        expected = ", ".join(COMMAND_MODELS)
        raise ValueError(f"unknown command type {command_type!r}; expected one of {expected}")
    valid = _validated(model, command)
    return _send(command_task_name(command_type), valid, wait=wait, timeout=timeout, app=app)


def _validated(model: type[CommandT], command: CommandT | Mapping[str, Any]) -> CommandT:
    """The command as the worker will read it; raises ``InvalidCommand`` before anything is
    sent, with the same field names and reasons a rejection would carry."""
    if isinstance(command, model):
        return command
    if isinstance(command, BaseModel):
        raise TypeError(f"expected a {model.__name__} command, got {type(command).__name__}")
    return parse_command(model, dict(command) if isinstance(command, Mapping) else command)


def _send(
    task_name: str,
    command: Command,
    *,
    wait: bool,
    timeout: float,
    app: Celery | None,
) -> AsyncResult[Any] | dict[str, Any]:
    pending = publish(task_name, command, app=app)
    if not wait:
        return pending
    try:
        result: dict[str, Any] = pending.get(timeout=timeout)
    except ResultTimeout:
        raise CommandTimeout(task_name, command.command_id, pending.id, timeout) from None
    return result
