from __future__ import annotations

from typing import Any

from celery import Task

from models.domain.commands import ADJUST_POINTS
from models.domain.names import ADJUST_POINTS_TASK
from tasks.commands import LIVE_COMMAND_OPTIONS, command_task, worker_task


@worker_task(ADJUST_POINTS_TASK, **LIVE_COMMAND_OPTIONS)
def adjust_points(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
    return command_task(self, ADJUST_POINTS, args, kwargs)
