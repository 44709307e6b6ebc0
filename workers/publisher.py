"""Publishing commands from Python services: the same JSON message any Celery client can send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery.result import AsyncResult
from pydantic import BaseModel

from celeryconfig import ADJUSTMENTS_QUEUE
from workers.app import app

ADJUST_POINTS_TASK = "loyalty.adjust_points"
UPSERT_CUSTOMER_TASK = "loyalty.upsert_customer"


def publish(task_name: str, command: BaseModel | Mapping[str, Any]) -> AsyncResult[Any]:
    payload = (
        command.model_dump(mode="json", exclude_none=True)
        if isinstance(command, BaseModel)
        else dict(command)
    )
    return app.send_task(
        task_name, args=[payload], queue=ADJUSTMENTS_QUEUE, routing_key=ADJUSTMENTS_QUEUE
    )


def publish_adjustment(command: BaseModel | Mapping[str, Any]) -> AsyncResult[Any]:
    return publish(ADJUST_POINTS_TASK, command)


def publish_customer_upsert(command: BaseModel | Mapping[str, Any]) -> AsyncResult[Any]:
    return publish(UPSERT_CUSTOMER_TASK, command)
