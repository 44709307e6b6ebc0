"""The SQL side of publishing the outbox: which rows the relay owes a message, and noting them as
dispatched. Publishing itself is the caller's (Celery), passed in as ``publish``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from models.domain.clock import utc_now
from models.persistence.unit_of_work import Publish
from models.services.side_effects import UnitsOfWork

RELAY_BATCH = 500


class RelayTiming(Protocol):
    """When a row is due (``SideEffectSettings``), in seconds."""

    @property
    def dispatch_grace(self) -> float: ...
    @property
    def sync_delay(self) -> float: ...
    @property
    def redispatch_after(self) -> float: ...


def note_dispatched(unit_of_work: UnitsOfWork, ids: Sequence[int]) -> None:
    """Losing this mark only means one more, harmless, publish by the relay: it is not waited
    for to reach the disk."""
    with unit_of_work() as uow:
        uow.outbox.mark_dispatched(ids, utc_now(), wait_for_flush=False)
        uow.commit()


def relay_due(unit_of_work: UnitsOfWork, publish: Publish, timing: RelayTiming) -> int:
    """Publish every outbox row that is owed and not in flight, a batch per transaction (the
    rows stay claimed until their mark commits); returns how many."""
    relayed = 0
    while True:
        with unit_of_work() as uow:
            now = utc_now()
            claimed = uow.outbox.claim_for_relay(
                now,
                grace=timedelta(seconds=timing.dispatch_grace),
                sync_delay=timedelta(seconds=timing.sync_delay),
                redispatch_after=timedelta(seconds=timing.redispatch_after),
                limit=RELAY_BATCH,
            )
            publish(claimed)
            uow.outbox.mark_dispatched([entry.id for entry in claimed], now)
            uow.commit()
        relayed += len(claimed)
        if len(claimed) < RELAY_BATCH:
            return relayed
