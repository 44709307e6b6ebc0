"""What the side-effect tasks share: they take an outbox row id and run their service
(``models.services.side_effects``), which finishes the row exactly once or schedules its retry.

Database faults are retried in place and then handed back to the broker, like the commands'.
Anything unforeseen still ends as a dead letter instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task

from models.services import side_effects
from models.services.side_effects import SideEffect
from tasks.commands import riding_out_faults, worker_task
from workers.db import database
from workers.pii import MaskingTask
from workers.settings import settings


class SideEffectTask(MaskingTask):
    """Anything unforeseen still ends as a dead letter instead of vanishing."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        outbox_id = args[0] if args else kwargs.get("outbox_id")
        if isinstance(outbox_id, int):
            side_effects.bury(database.unit_of_work, outbox_id, f"{type(exc).__name__}: {exc}")


def side_effect_task(name: str) -> Callable[[Callable[..., Any]], Task[Any, Any]]:
    """The commands' delivery policy (late acks, requeued when the worker dies), on the side
    effect's own queue."""
    return worker_task(name, base=SideEffectTask)


def perform(outbox_id: int, work: SideEffect) -> str:
    return riding_out_faults(
        lambda: side_effects.attempt(
            database.unit_of_work, outbox_id, work, lambda: settings().side_effects
        )
    )
