"""Publishing committed outbox rows: what the unit of work calls after each commit (wired in
``workers.app``), and what the relay (``tasks.outbox``) calls for the rows it claims.

Publishing twice is harmless: every side-effect task is keyed by its outbox row. Publishing never
is what the relay rules out, so a publish after commit that fails is only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Celery

from models.domain.names import is_sync
from models.domain.side_effects import OutboxEntry
from models.services import outbox
from workers.db import database

log = logging.getLogger(__name__)

# The committing worker tries briefly; the relay is the guarantee, so there is no point in
# holding a command's worker for long while the broker is away.
_AFTER_COMMIT_RETRY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}


def publish_committed(celery: Celery, entries: Sequence[OutboxEntry]) -> None:
    """Publish a transaction's outbox rows together, then note them as dispatched in one
    statement. Syncs are left to the relay, which publishes them after the sync delay."""
    owed = [entry for entry in entries if not is_sync(entry.task_name)]
    if not owed:
        return
    ids = [entry.id for entry in owed]
    try:
        publish(celery, owed, retry_policy=_AFTER_COMMIT_RETRY)
    except Exception:
        log.warning("outbox %s maybe not published; the relay will see to it", ids, exc_info=True)
        return
    try:
        outbox.note_dispatched(database.unit_of_work, ids)
    except Exception:
        log.warning("outbox %s published but not marked", ids, exc_info=True)


def publish(
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
