"""The worker's consumer: Celery's, with a gate for task messages, so that one Celery cannot run
is refused before it can stop the consumer, and plain words when RabbitMQ holds a queue of the
wrong type.

Celery's consumer trusts a task message's shape: a message without an ``id`` header, or whose
body is an object or a number instead of ``[args, kwargs, embed]``, raises inside the consumer and
takes the worker down, and a restarted worker takes the same message again. A non-Python
publisher can send anything, so each message is checked here first. One that fails is rejected
without requeue and logged; it is recorded in ``rejected_messages`` when it names its shop, and a
publisher waiting on its task id gets the rejection as the result.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from amqp.exceptions import PreconditionFailed
from celery import signals, states
from celery.backends.base import DisabledBackend
from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer

from models.domain import results
from models.domain.commands import InvalidCommand, salvage_key
from models.domain.names import ADJUSTMENTS_QUEUE
from models.services.command_engine import reject_invalid
from workers.db import database
from workers.pii import MAX_DEPTH, masked_repr
from workers.settings import settings

log = logging.getLogger(__name__)


def malformation(message: Any) -> tuple[str | None, Any]:
    """Why ``message`` cannot be a task (None when it can), and its body as far as it decoded."""
    headers = message.headers
    if not isinstance(headers, dict):
        return "the headers must be an object", None
    for name in ("id", "task"):
        if not isinstance(headers.get(name), str) or not headers[name]:
            return f"the header {name!r} must be a non-empty string", None
    try:
        body = message.decode()
    except Exception as error:  # a message that does not decode says so in any exception
        return f"the body does not decode: {type(error).__name__}: {error}"[:300], None
    if not (
        isinstance(body, list | tuple)
        and len(body) == 3
        and isinstance(body[0], list | tuple)
        and isinstance(body[1], dict)
        and (body[2] is None or isinstance(body[2], dict))
    ):
        return "the body must be [args, kwargs, embed]", body
    if _nested_deeper_than(body, MAX_DEPTH):
        return f"the body nests deeper than {MAX_DEPTH} levels", body
    return None, body


def _nested_deeper_than(value: Any, limit: int) -> bool:
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            pending.extend((child, depth + 1) for child in item)
    return False


def queue_type_advice(refusal: str) -> str | None:
    """What to do when RabbitMQ refused to declare a queue as a quorum queue because it exists
    as another type; None for any other refusal."""
    found = re.search(r"arg 'x-queue-type' for queue '([^']*)' in vhost '([^']*)'", refusal)
    if found is None:
        return None
    queue, vhost = found.groups()
    return (
        f"RabbitMQ already has the queue {queue!r} (vhost {vhost!r}) as another type than the"
        " quorum queue this worker declares: a publisher declared it first without"
        " 'x-queue-type: quorum'. To fix it: stop the publishers; move any messages the queue"
        f" holds (a shovel); delete it (rabbitmqctl delete_queue {queue} --vhost {vhost}); start"
        " the worker, which declares it as a quorum queue; then make each publisher either publish"
        " without declaring the queue or declare it with the argument x-queue-type: quorum."
    )


class GuardedConsumer(Consumer):
    """Celery's consumer, with every task message checked by :func:`malformation` first."""

    # Celery's, left out of its type stubs:
    connection_errors: tuple[type[Exception], ...]
    prefetch_multiplier: int
    initial_prefetch_count: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prefetch_two_batches()

    def _prefetch_two_batches(self) -> None:
        """A worker of live commands holds two batches (one applied while the next fills): the
        batches never grow past what the prefetch window lets in. Whatever it holds when it
        dies comes back within the redelivery bound, however many messages that is."""
        consumed = self.app.amqp.queues.consume_from
        if consumed and ADJUSTMENTS_QUEUE not in consumed:
            return
        multiplier = max(1, self.prefetch_multiplier)
        processes = max(1, self.initial_prefetch_count // multiplier)
        wanted = math.ceil(settings().batches.prefetch / processes)
        if wanted > multiplier:
            self.prefetch_multiplier = wanted
            self.initial_prefetch_count = processes * wanted

    def start(self) -> None:
        try:
            super().start()
        except PreconditionFailed as refusal:
            advice = queue_type_advice(str(refusal))
            if advice is not None:
                log.critical(advice)
            raise

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            problem, body = malformation(message)
            if problem is None:
                return handle(message)
            return self.on_malformed_message(message, problem, body)

        return on_task_received

    def on_malformed_message(self, message: Any, problem: str, body: Any) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        log.error(
            "Rejected a malformed task message (%s): task %s, id %s, body %s",
            problem,
            masked_repr(headers.get("task"), 100),
            masked_repr(headers.get("id"), 100),
            masked_repr(body, 300),
        )
        message.reject_log_error(log, self.connection_errors)
        signals.task_rejected.send(sender=self, message=message, exc=InvalidTaskError(problem))
        result = _record(str(headers.get("task") or "unknown")[:32], body, problem)
        self._answer(headers.get("id"), result)

    def _answer(self, task_id: Any, result: dict[str, Any]) -> None:
        """A publisher waiting on the task gets the rejection, as for any invalid command."""
        backend = self.app.backend
        if not isinstance(task_id, str) or not task_id or isinstance(backend, DisabledBackend):
            return
        try:
            backend.store_result(task_id, result, states.SUCCESS)
        except Exception:
            log.exception("Could not store the rejection of task %s", task_id)


def _record(task: str, body: Any, problem: str) -> dict[str, Any]:
    """The rejection, recorded in ``rejected_messages`` when the message names a shop; a
    database that is down only costs the record, never the consumer."""
    args = body[0] if isinstance(body, list | tuple) and body else None
    command = args[0] if isinstance(args, list | tuple) and args else None
    shop_id, command_id = salvage_key(command)
    invalid = InvalidCommand([{"field": "message", "reason": problem}])
    if shop_id is not None:
        try:
            return reject_invalid(database.unit_of_work(), task, command, invalid)
        except Exception:
            log.exception("Could not record the malformed message of shop %s", shop_id)
    return results.as_json(results.rejected(shop_id, command_id, invalid.rejection()))
