from __future__ import annotations

from typing import Any

from celery import Task

from models.domain.commands import UPSERT_CUSTOMER
from models.domain.names import UPSERT_CUSTOMER_TASK
from tasks.commands import LIVE_COMMAND_OPTIONS, command_task, worker_task


@worker_task(UPSERT_CUSTOMER_TASK, **LIVE_COMMAND_OPTIONS)
def upsert_customer(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
    return command_task(self, UPSERT_CUSTOMER, args, kwargs)
