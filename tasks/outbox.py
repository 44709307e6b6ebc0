"""Publishing the outbox: at once after each commit, and by the periodic relay for every row whose
time has come: a sync once ``LOYALTY_SYNC_DELAY`` has passed, a retry at its next attempt, a row
whose message never left (the process died after commit, the broker was down), and a row in
flight past the redelivery bound (its message was lost, or its worker died).

Publishing twice is harmless: every side-effect task is keyed by its outbox row. Publishing never
is what the relay rules out. No message carries a countdown: waits live on the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Celery, Task

from models.domain.side_effects import RELAY_OUTBOX, OutboxEntry, is_sync
from models.services import outbox
from workers.app import app
from workers.db import database
from workers.settings import SideEffectSettings

log = logging.getLogger(__name__)

# The committing worker tries briefly; the relay is the guarantee, so there is no point in
# holding a command's worker for long while the broker is away.
_FAST_PATH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def dispatch(entries: Sequence[OutboxEntry], *, celery: Celery | None = None) -> None:
    """Publish committed outbox rows together, then note them as dispatched in one statement.
    Syncs are left to the relay, which publishes them after the sync delay."""
    owed = [entry for entry in entries if not is_sync(entry.task_name)]
    if not owed:
        return
    ids = [entry.id for entry in owed]
    try:
        _publish(celery or app, owed, retry_policy=_FAST_PATH_RETRY)
    except Exception:
        log.warning("outbox %s maybe not published; the relay will see to it", ids, exc_info=True)
        return
    try:
        outbox.note_dispatched(database.unit_of_work, ids)
    except Exception:
        log.warning("outbox %s published but not marked", ids, exc_info=True)


def _publish(
    celery: Celery, entries: Sequence[OutboxEntry], *, retry_policy: dict[str, Any] | None = None
) -> None:
    """One producer and one batch (kombu's): on Redis the messages go in one pipelined round
    trip; a transport without batches (RabbitMQ) publishes them one by one, each confirmed."""
    with celery.producer_or_acquire() as producer, producer.batch():
        for entry in entries:
            # Nobody waits on a side effect's result (its outcome is kept on the outbox row):
            # without ignore_result the publisher would subscribe to each on the result backend.
            celery.send_task(
                entry.task_name,
                args=[entry.id],
                retry=True,
                retry_policy=retry_policy,
                ignore_result=True,
                producer=producer,
            )


@app.task(name=RELAY_OUTBOX, bind=True, typing=False, ignore_result=True, acks_late=True)
def relay_outbox(self: Task[Any, Any]) -> int:
    """Publish every outbox row that is owed and not in flight; returns how many."""
    relayed = outbox.relay_due(
        database.unit_of_work,
        lambda claimed: _publish(app, claimed),
        SideEffectSettings.from_environment(),
    )
    if relayed:
        log.info("relayed %d outbox rows", relayed)
    return relayed
