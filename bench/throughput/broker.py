"""The adjustments queue on the broker: emptied before each phase, filled while no worker runs,
and the phase's results dropped from the result backend afterwards."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.throughput.config import QUEUE, say

if TYPE_CHECKING:
    from celery import Celery


def reset_queue(app: Celery) -> None:
    """Declare the queue as the worker would (quorum on RabbitMQ) and empty it."""
    with app.connection_for_write() as connection:
        app.amqp.queues[QUEUE](connection.default_channel).declare()
    purged = app.control.purge()
    if purged:
        say(f"    purged {purged} stale message(s)")


def queue_state(app: Celery) -> tuple[int, int]:
    """(messages ready, consumers) of the adjustments queue; Redis always reports 0 consumers."""
    with app.connection_for_write() as connection:
        bound = app.amqp.queues[QUEUE](connection.default_channel)
        declared: Any = bound.queue_declare(passive=True)
        _, messages, consumers = declared
    return int(messages), int(consumers)


def publish(app: Celery, task_name: str, commands: Sequence[dict[str, Any]]) -> list[str]:
    """Send every command as fast as one producer connection goes; returns the task ids."""
    with app.producer_or_acquire() as producer:
        return [
            app.send_task(task_name, args=[command], queue=QUEUE, producer=producer).id
            for command in commands
        ]


def prefill(app: Celery, task_name: str, commands: Sequence[dict[str, Any]]) -> list[str]:
    """Queue every command while no worker runs; stops if something else consumes the queue."""
    started = time.perf_counter()
    task_ids = publish(app, task_name, commands)
    elapsed = time.perf_counter() - started
    messages, consumers = queue_state(app)
    say(
        f"    queued {len(commands)} messages in {elapsed:.1f} s "
        f"({len(commands) / elapsed:.0f}/s); queue holds {messages}, consumers {consumers}"
    )
    if consumers or messages != len(commands):
        raise RuntimeError(
            f"another consumer is on {QUEUE} ({consumers} consumers, {messages} messages): "
            "stop it or use another broker/vhost/DB"
        )
    return task_ids


def forget_results(app: Celery, task_ids: Sequence[str]) -> None:
    """Drop the phase's results from a Redis result backend (they would stay for a day)."""
    backend: Any = app.backend
    client = getattr(backend, "client", None)
    if client is None or not hasattr(backend, "get_key_for_task"):
        return
    for start in range(0, len(task_ids), 1000):
        client.delete(
            *(backend.get_key_for_task(task_id) for task_id in task_ids[start : start + 1000])
        )
