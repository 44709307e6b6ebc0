"""Live command batches as the worker's consumer hands them to the pool: celery-batches'
``SimpleRequest`` objects, one per message."""

from __future__ import annotations

import uuid
from typing import Any

from celery_batches import SimpleRequest

from models.domain.names import ADJUST_POINTS_TASK, UPSERT_CUSTOMER_TASK
from workers.app import app


def request(task_name: str, *args: Any, **kwargs: Any) -> SimpleRequest:
    return SimpleRequest(
        id=str(uuid.uuid4()),
        name=task_name,
        args=args,
        kwargs=kwargs,
        delivery_info={"routing_key": "loyalty.adjustments"},
        hostname="test@localhost",
        ignore_result=False,
        reply_to=None,
        correlation_id=None,
        request_dict={},
    )


def as_request(item: Any) -> SimpleRequest:
    """A bulk chunk's item (a command, or ``{"upsert_customer": {...}}``) as a live message."""
    if isinstance(item, dict) and set(item) == {"upsert_customer"}:
        return request(UPSERT_CUSTOMER_TASK, item["upsert_customer"])
    return request(ADJUST_POINTS_TASK, item)


def stored_result(task_id: str) -> Any:
    """The result stored under ``task_id``: read at once, without subscribing to it."""
    meta = app.backend.get_task_meta(task_id)
    assert meta["status"] == "SUCCESS", meta
    return meta["result"]


def stored_state(task_id: str) -> str:
    return str(app.backend.get_task_meta(task_id)["status"])
