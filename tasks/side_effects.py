"""What the side-effect tasks share: they take an outbox row id, finish it exactly once, and
decide between trying again later and giving up.

Database faults are retried in place and then handed back to the broker, like the commands'. A
provider's or the SMTP server's transient fault is counted on the outbox row, which is given its
next attempt time (backoff, never sooner than the provider's Retry-After); the relay publishes it
when due. No wait is ever a countdown held in the broker. After the last attempt, or on a
permanent fault, or on a bug, the row goes to the dead letters, where ``loyalty dead-letters
replay`` can send it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from models.domain.clock import utc_now
from models.domain.side_effects import retry_delay
from tasks.commands import COMMAND_TASK_OPTIONS, riding_out_faults
from workers.db import database
from workers.pii import MaskingTask
from workers.settings import settings

log = logging.getLogger(__name__)


class TryAgain(Exception):
    """A transient fault. ``counts`` is False for waits that are not failures (our own rate
    limit), which never lead to a dead letter."""

    def __init__(self, error: str, *, retry_after: float | None = None, counts: bool = True):
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after
        self.counts = counts


class GiveUp(Exception):
    """A permanent fault: trying again cannot help."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class SideEffectTask(MaskingTask):
    """Anything unforeseen still ends as a dead letter instead of vanishing."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        outbox_id = args[0] if args else kwargs.get("outbox_id")
        if isinstance(outbox_id, int):
            _bury(outbox_id, f"{type(exc).__name__}: {exc}")


def side_effect_options(queue: str) -> dict[str, Any]:
    """The commands' delivery policy (late acks, requeued when the worker dies), on the side
    effect's own queue."""
    return {**COMMAND_TASK_OPTIONS, "base": SideEffectTask, "queue": queue}


def perform(outbox_id: int, work: Callable[[int], str]) -> str:
    return riding_out_faults(lambda: _attempt(outbox_id, work))


def _attempt(outbox_id: int, work: Callable[[int], str]) -> str:
    try:
        return work(outbox_id)
    except TryAgain as fault:
        return _schedule_retry(outbox_id, fault)
    except GiveUp as fault:
        log.warning("outbox %s gave up: %s", outbox_id, fault.error)
        _bury(outbox_id, fault.error)
        return "dead"


def _schedule_retry(outbox_id: int, fault: TryAgain) -> str:
    pacing = settings().side_effects
    with database.unit_of_work() as uow:
        row = uow.side_effects.lock_pending(outbox_id)
        if row is None:
            return "already done"
        now = utc_now()
        if not fault.counts:
            wait = fault.retry_after or pacing.backoff_base
            uow.side_effects.postpone(outbox_id, now + timedelta(seconds=wait))
        else:
            attempts = uow.side_effects.record_failure(outbox_id, fault.error)
            if attempts >= pacing.max_attempts:
                uow.side_effects.dead_letter(row, fault.error, attempts, now)
                uow.commit()
                log.warning("outbox %s dead after %d attempts", outbox_id, attempts)
                return "dead"
            wait = retry_delay(
                attempts,
                retry_after=fault.retry_after,
                base=pacing.backoff_base,
                cap=pacing.backoff_cap,
            )
            uow.side_effects.postpone(outbox_id, now + timedelta(seconds=wait))
        uow.commit()
    log.info("outbox %s: %s; again in %.1f s", outbox_id, fault.error, wait)
    return f"retry in {wait:.1f} s: {fault.error}"[:200]


def _bury(outbox_id: int, error: str) -> None:
    with database.unit_of_work() as uow:
        row = uow.side_effects.lock_pending(outbox_id)
        if row is None:
            return
        uow.side_effects.dead_letter(row, error, row.attempts + 1, utc_now())
        uow.commit()
