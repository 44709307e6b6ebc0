"""Live commands in micro-batches: celery-batches buffers the messages in the worker's consumer and
hands the pool one list of requests at a time, as a group commit (``CommandBatches._do_flush``).

What this module adds to the library is what the project's delivery guarantees need:

- adjust-points and upsert-customer messages share one buffer, so a customer's upsert and the
  adjustment sent after it land in one batch, in message order;
- each message is acknowledged only once its batch has committed, and put back on its queue when
  the batch could not be applied (the database stayed down) or the pool process died with it
  (the library would acknowledge the first and hold the second until the connection closes);
- each message's result is stored under its own task id, in one Redis pipeline per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from time import monotonic
from typing import Any

from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.worker.consumer import Consumer
from celery.worker.request import Request as CeleryRequest
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

from models.domain.results import FAILED
from workers.settings import settings

log = logging.getLogger(__name__)

Verdict = dict[str, Any]
"""What a batch tells the consumer: ``{"requeue": [task ids], "outcomes": {task id: status}}``;
every message not to requeue is done, and its outcome (its result's masked repr, or
``failed: …``) is what Flower shows."""


class CommandBatches(Batches):  # type: ignore[misc]  # celery-batches ships no types
    """The base of the live command tasks. ``leader`` names the task whose buffer they share."""

    abstract = True
    Request = "workers.pii:MaskedRequest"
    leader = ""

    @property
    def flush_every(self) -> int:
        return settings().batches.max_commands

    @property
    def flush_interval(self) -> float:
        return settings().batches.max_wait

    _in_flight = 0
    """Batches handed to the pool and not yet returned (the leader's count)."""
    _filling_since = 0.0
    """When the oldest buffered message arrived (monotonic seconds)."""

    def Strategy(self, task: Batches, app: Celery, consumer: Consumer) -> Callable[..., None]:
        leader: Any = app.tasks[self.leader]
        buffer: Callable[..., None] = Batches.Strategy(leader, leader, app, consumer)

        def on_message(*args: Any, **kwargs: Any) -> None:
            if leader._buffer.empty():
                leader._filling_since = monotonic()
            buffer(*args, **kwargs)
            leader._do_flush()

        return on_message

    def _do_flush(self) -> None:
        """Group commit. A full batch goes at once; so does whatever is buffered when every
        pool process is idle, so a lone command never waits. While a process is busy, the batch
        keeps filling until a process is free and its oldest message has waited
        ``flush_interval``: under load, batches grow with the backlog instead of each paying a
        transaction for one or two commands."""
        if self._buffer.qsize() < self.flush_every and self._in_flight > 0:
            processes = max(1, self._pool.num_processes)
            waited = monotonic() - self._filling_since >= self.flush_interval
            if self._in_flight >= processes or not waited:
                return
        super()._do_flush()

    def flush(self, requests: Collection[CeleryRequest]) -> Any:
        pending = list(requests)
        for request in pending:  # what Celery's own strategy tells Flower on receipt
            request.send_event(
                "task-received",
                name=request.name,
                args=request.argsrepr,
                kwargs=request.kwargsrepr,
                root_id=request.root_id,
                parent_id=request.parent_id,
                retries=request.request_dict.get("retries", 0),
            )
        started = monotonic()
        self._in_flight += 1

        def settled() -> None:
            self._in_flight -= 1
            if not self._buffer.empty():
                self._do_flush()

        def on_accepted(pid: int, time_accepted: float) -> None:
            for request in pending:
                request.send_event("task-started", pid=pid)

        def on_return(verdict: Verdict | None) -> None:
            if verdict is None:  # the batch raised past every guard: apply it again
                verdict = {"requeue": [request.id for request in pending]}
            try:
                _conclude(pending, verdict, monotonic() - started)
            finally:
                settled()

        def on_failure(exc_info: Any) -> None:
            # The pool process died (kill -9, a hard time limit) holding the batch.
            error = getattr(exc_info, "exception", exc_info)
            log.warning("batch of %d lost with its process (%r): requeued", len(pending), error)
            for request in pending:
                request.reject(requeue=True)
            settled()

        return self._pool.apply_async(
            apply_batches_task,
            (self, ([SimpleRequest.from_request(request) for request in pending],), 0, None),
            accept_callback=on_accepted,
            callback=on_return,
            error_callback=on_failure,
        )


def _conclude(requests: Sequence[CeleryRequest], verdict: Verdict, runtime: float) -> None:
    """Requeue or acknowledge each message as its batch's verdict says, then tell Flower and the
    log how each command went, as Celery would for a task of its own."""
    requeue = set(verdict.get("requeue", ()))
    outcomes = verdict.get("outcomes", {})
    done = [request for request in requests if request.id not in requeue]
    for request in requests:
        if request.id in requeue:
            request.reject(requeue=True)
        else:
            request.acknowledge()
    for request in done:
        outcome = outcomes.get(request.id, "")
        if outcome.startswith(FAILED):
            request.send_event("task-failed", exception=outcome, traceback="")
            continue
        request.send_event("task-succeeded", result=outcome, runtime=runtime)
        # Celery's own line for a task that succeeded, so logs read as they always did.
        log.info("Task %s[%s] succeeded in %.6fs: %s", request.name, request.id, runtime, outcome)


def is_batch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A call from the worker's batches (one list of requests), not a call with a command."""
    return (
        len(args) == 1
        and not kwargs
        and isinstance(args[0], list)
        and bool(args[0])
        and all(isinstance(request, SimpleRequest) for request in args[0])
    )


def store_results(
    app: Celery, requests: Sequence[SimpleRequest], results: Sequence[dict[str, Any]]
) -> None:
    """Each request's result under its own task id, for publishers waiting on it: one pipeline
    on Redis, one write each elsewhere."""
    backend = app.backend
    wanted = [
        (request, result)
        for request, result in zip(requests, results, strict=True)
        if request.id and not request.ignore_result and not _is_eager(request)
    ]
    if not wanted:
        return
    if not isinstance(backend, RedisBackend):
        for request, result in wanted:
            backend.mark_as_done(request.id, result, request=request)
        return
    redis: Any = backend  # what follows uses the Redis backend's own (untyped) helpers
    with redis.client.pipeline(transaction=False) as pipe:
        for request, result in wanted:
            meta = redis._get_result_meta(
                result=backend.encode_result(result, states.SUCCESS),
                state=states.SUCCESS,
                traceback=None,
                request=request,
            )
            meta["task_id"] = request.id
            key = redis.get_key_for_task(request.id)
            value = redis.encode(meta)
            if redis.expires:
                pipe.setex(key, redis.expires, value)
            else:
                pipe.set(key, value)
            pipe.publish(key, value)
        pipe.execute()


def store_failure(app: Celery, request: SimpleRequest, error: Exception) -> None:
    if request.id and not request.ignore_result and not _is_eager(request):
        app.backend.mark_as_failure(request.id, error, request=request)


def _is_eager(request: SimpleRequest) -> bool:
    return bool((request.delivery_info or {}).get("is_eager"))
