"""Bulk chunks of commands (merchant migrations) on their own queue, so a migration of millions
of customers never delays a live adjustment. Same retries as a single command: infrastructure
faults are retried for as long as it takes, and the whole chunk is one transaction."""

from __future__ import annotations

from typing import Any

from celery import Task

from models.domain import names, parsing
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tasks.commands import run_command, worker_task
from workers.settings import settings


def _apply_chunk(uow: UnitOfWork, payload: Any) -> list[dict[str, Any]]:
    max_commands = settings().bulk.max_commands
    return command_engine.adjust_points_bulk(uow, payload, max_commands=max_commands)


@worker_task(names.ADJUST_POINTS_BULK_TASK)
def adjust_points_bulk(self: Task[Any, Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """One argument: a list of commands (adjust-points objects, or ``{"upsert_customer": …}``);
    returns one result per command, in order."""
    results = run_command(_apply_chunk, parsing.BULK, args, kwargs, argument="commands")
    return results if isinstance(results, list) else [results]
