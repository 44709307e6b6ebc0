"""Running one side effect: it takes an outbox row id, finishes the row exactly once, and decides
between trying again later and giving up.

A provider's or the SMTP server's transient fault is counted on the outbox row, which is given its
next attempt time (backoff, never sooner than the provider's Retry-After); the relay publishes it
when due. No wait is ever a countdown held in the broker. After the last attempt, or on a
permanent fault, or on a bug, the row goes to the dead letters, where ``loyalty dead-letters
replay`` can send it again. Database faults are the caller's to ride out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from models.domain.clock import utc_now
from models.domain.side_effects import retry_delay
from models.persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

UnitsOfWork = Callable[[], UnitOfWork]
"""Opens a new unit of work (``Database.unit_of_work``)."""

SideEffect = Callable[[int], str]
"""The work of one side effect, given its outbox row id; returns the outcome it recorded."""


class RetryPolicy(Protocol):
    """How often and how patiently a failing side effect is tried (``SideEffectSettings``)."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def backoff_base(self) -> float: ...
    @property
    def backoff_cap(self) -> float: ...


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


def attempt(
    unit_of_work: UnitsOfWork,
    outbox_id: int,
    work: SideEffect,
    policy: Callable[[], RetryPolicy],
) -> str:
    """One attempt at the side effect; a fault it reports is scheduled or buried here."""
    try:
        return work(outbox_id)
    except TryAgain as fault:
        return _schedule_retry(unit_of_work, outbox_id, fault, policy())
    except GiveUp as fault:
        log.warning("outbox %s gave up: %s", outbox_id, fault.error)
        bury(unit_of_work, outbox_id, fault.error)
        return "dead"


def _schedule_retry(
    unit_of_work: UnitsOfWork, outbox_id: int, fault: TryAgain, policy: RetryPolicy
) -> str:
    with unit_of_work() as uow:
        row = uow.outbox.lock_pending(outbox_id)
        if row is None:
            return "already done"
        now = utc_now()
        if not fault.counts:
            wait = fault.retry_after or policy.backoff_base
            uow.outbox.postpone(outbox_id, now + timedelta(seconds=wait))
        else:
            attempts = uow.outbox.record_failure(outbox_id, fault.error)
            if attempts >= policy.max_attempts:
                uow.outbox.dead_letter(row, fault.error, attempts, now)
                uow.commit()
                log.warning("outbox %s dead after %d attempts", outbox_id, attempts)
                return "dead"
            wait = retry_delay(
                attempts,
                retry_after=fault.retry_after,
                base=policy.backoff_base,
                cap=policy.backoff_cap,
            )
            uow.outbox.postpone(outbox_id, now + timedelta(seconds=wait))
        uow.commit()
    log.info("outbox %s: %s; again in %.1f s", outbox_id, fault.error, wait)
    return f"retry in {wait:.1f} s: {fault.error}"[:200]


def bury(unit_of_work: UnitsOfWork, outbox_id: int, error: str) -> None:
    """The row to the dead letters, unless it is finished already."""
    with unit_of_work() as uow:
        row = uow.outbox.lock_pending(outbox_id)
        if row is None:
            return
        uow.outbox.dead_letter(row, error, row.attempts + 1, utc_now())
        uow.commit()
