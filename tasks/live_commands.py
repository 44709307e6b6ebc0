"""The live command tasks, one per command type of ``COMMAND_MODELS`` (``loyalty.adjust_points``,
``loyalty.upsert_customer``), all on ``loyalty.adjustments``. They share one buffer, so a worker
applies them in the order they arrived, in micro-batches (``tasks.batching``)."""

from __future__ import annotations

from typing import Any

from celery import Task

from models.domain.commands import ADJUST_POINTS, COMMAND_MODELS, UPSERT_CUSTOMER
from models.domain.names import command_task_name
from tasks.commands import LIVE_COMMAND_OPTIONS, command_task, worker_task


def live_command_task(command_type: str) -> Task[Any, Any]:
    def run(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        return command_task(self, command_type, args, kwargs)

    run.__name__ = run.__qualname__ = command_type
    return worker_task(command_task_name(command_type), **LIVE_COMMAND_OPTIONS)(run)


LIVE_COMMAND_TASKS = {
    command_type: live_command_task(command_type) for command_type in COMMAND_MODELS
}
adjust_points = LIVE_COMMAND_TASKS[ADJUST_POINTS]
upsert_customer = LIVE_COMMAND_TASKS[UPSERT_CUSTOMER]
