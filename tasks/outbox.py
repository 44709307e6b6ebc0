"""The outbox relay: publishes (``workers.outbox``) every row whose time has come: a sync once
``LOYALTY_SYNC_DELAY`` has passed, a retry at its next attempt, a row whose message never left
(the process died after commit, the broker was down), and a row in flight past the redelivery
bound (its message was lost, or its worker died).

Publishing twice is harmless: every side-effect task is keyed by its outbox row. Publishing never
is what the relay rules out. No message carries a countdown: waits live on the rows.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from models.domain.names import RELAY_OUTBOX
from models.services import outbox
from workers.app import app
from workers.db import database
from workers.outbox import publish
from workers.settings import settings

log = logging.getLogger(__name__)


@app.task(name=RELAY_OUTBOX, bind=True, typing=False, ignore_result=True, acks_late=True)
def relay_outbox(self: Task[Any, Any]) -> int:
    """Publish every outbox row that is owed and not in flight; returns how many."""
    relayed = outbox.relay_due(
        database.unit_of_work, lambda claimed: publish(app, claimed), settings().side_effects
    )
    if relayed:
        log.info("relayed %d outbox rows", relayed)
    return relayed
