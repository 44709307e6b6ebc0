from __future__ import annotations

from typing import Any

from celery import Task

from models import handlers
from models.commands import UPSERT_CUSTOMER
from tasks.commands import COMMAND_TASK_OPTIONS, run_command
from workers.app import app


@app.task(name="loyalty.upsert_customer", **COMMAND_TASK_OPTIONS)
def upsert_customer(self: Task[Any, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    return run_command(handlers.upsert_customer, UPSERT_CUSTOMER, args, kwargs)
