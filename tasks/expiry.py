"""The expiry run (``models.services.expiry``), started by beat every ``LOYALTY_EXPIRY_INTERVAL``
seconds on ``loyalty.expiry``. A run takes at most half the fault window; what it leaves is picked
up by a run it publishes at once, so a shop of millions is never cut short by the time limit."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

from models.domain.names import EXPIRE_POINTS
from models.services import expiry
from workers.app import app
from workers.db import database
from workers.settings import settings

log = logging.getLogger(__name__)


@app.task(name=EXPIRE_POINTS, bind=True, typing=False, ignore_result=True, acks_late=True)
def expire_points(self: Task[Any, Any]) -> dict[str, Any]:
    """Expire every lot due by now, in every shop with a policy, and send the reminders due."""
    budget = settings().redelivery.fault_retry_window / 2
    report = expiry.run_expiry(database.unit_of_work, deadline=time.monotonic() + budget)
    if report.accounts or report.reminders:
        log.info(
            "expired %d points of %d accounts, %d reminders",
            report.points,
            report.accounts,
            report.reminders,
        )
    if not report.complete:
        expire_points.delay()
    return {
        "points": report.points,
        "accounts": report.accounts,
        "reminders": report.reminders,
        "complete": report.complete,
    }
