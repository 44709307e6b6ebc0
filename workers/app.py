"""The Celery application.

Start a worker with ``celery -A workers.app worker -Q loyalty.adjustments``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

from workers.db import database
from workers.pii import MaskingLogFilter

app = Celery(
    "loyalty",
    # Flower and the worker logs show task arguments and results: masked, see workers.pii.
    task_cls="workers.pii:MaskingTask",
    include=[
        "tasks.adjustments",
        "tasks.customers",
        "tasks.bulk",
        "tasks.outbox",
        "tasks.tiers",
        "tasks.emails",
        "tasks.syncs.klaviyo",
        "tasks.syncs.omnisend",
        "tasks.syncs.postscript",
    ],
)
app.config_from_object("celeryconfig")

# httpx logs every request URL at INFO, and a provider lookup's URL carries the customer's email.
logging.getLogger("httpx").setLevel(logging.WARNING)


@worker_process_init.connect
def _renew_engine_after_fork(**_: Any) -> None:
    database.after_fork()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_emails_in_worker_logs(logger: logging.Logger, **_: Any) -> None:
    for handler in logger.handlers:
        handler.addFilter(MaskingLogFilter())
