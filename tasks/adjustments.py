from __future__ import annotations

from typing import Any

from celery import Task

from models import handlers
from models.commands import ADJUST_POINTS
from tasks.commands import COMMAND_TASK_OPTIONS, run_command
from workers.app import app


@app.task(name="loyalty.adjust_points", **COMMAND_TASK_OPTIONS)
def adjust_points(self: Task[Any, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    return run_command(handlers.adjust_points, ADJUST_POINTS, args, kwargs)
