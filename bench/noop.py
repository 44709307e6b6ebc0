"""The framework ceiling: a task that pays for everything ``loyalty.adjust_points`` pays for in
Celery (same app, same queue, same task options: late acks, reject on worker lost, JSON, a stored
result of the same shape) and does no database work.

The worker imports it with ``-I bench.noop``. Each call appends its completion time to a Redis list
(one RPUSH, one round trip of ~0.1 ms): the list's length tells the benchmark how many are done and
its min/max give the same first-to-last span the real task's ``processed_commands.created_at`` does.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Task

from bench import COMPLETIONS_KEY, COMPLETIONS_URL_ENV, NOOP_TASK
from tasks.commands import COMMAND_TASK_OPTIONS
from workers.app import app

_client: redis.Redis | None = None


def completions() -> redis.Redis:
    """One client per worker process, made on first use (after the prefork)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            os.environ.get(COMPLETIONS_URL_ENV, "redis://127.0.0.1:6379/12")
        )
    return _client


@app.task(name=NOOP_TASK, **COMMAND_TASK_OPTIONS)
def noop(self: Task[Any, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    command: dict[str, Any] = args[0] if args and isinstance(args[0], dict) else {}
    completions().rpush(COMPLETIONS_KEY, repr(time.time()))
    return canned_result(command)


def canned_result(command: dict[str, Any]) -> dict[str, Any]:
    """A result of the size and shape of an applied adjustment, so storing it costs the same."""
    delta = command.get("adjustment", 0)
    return {
        "status": "applied",
        "command_id": command.get("command_id"),
        "shop_id": command.get("shop_id"),
        "transaction_id": "00000000-0000-0000-0000-000000000000",
        "data": {
            "type": "points_adjustment",
            "id": "00000000-0000-0000-0000-000000000000",
            "attributes": {
                "customer_id": command.get("customer_id"),
                "adjustment": delta,
                "applied_adjustment": delta,
                "points_before": 0,
                "points_after": 0,
                "current_points": 0,
                "note": command.get("note"),
            },
        },
        "account": {
            "customer_id": command.get("customer_id"),
            "points": {"balance": 0, "earned": 0, "redeemed": 0, "adjusted": 0},
            "lifetime_points": 0,
            "tier": None,
            "revision": 0,
            "last_activity_at": "1970-01-01T00:00:00.000Z",
        },
    }
