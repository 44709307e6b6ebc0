"""The Celery application.

Start a worker with ``celery -A workers.app worker -Q loyalty.adjustments``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

import celeryconfig
from workers.db import database
from workers.outbound.providers import PROVIDERS
from workers.outbox import publish_committed
from workers.pii import MaskingLogFilter
from workers.settings import settings

app = Celery(
    "loyalty",
    # Flower and the worker logs show task arguments and results: masked, see workers.pii.
    task_cls="workers.pii:MaskingTask",
    include=[
        "tasks.live_commands",
        "tasks.bulk",
        "tasks.outbox",
        "tasks.tiers",
        "tasks.emails",
        "tasks.syncs",
        "tasks.expiry",
    ],
)
# Read when Celery first needs its configuration, not when this module is imported.
app.add_defaults(lambda: celeryconfig.configuration(settings(), PROVIDERS))
# Every unit of work of this process publishes what its commit owes through this app.
database.publish = functools.partial(publish_committed, app)

# The celery command line's own options that take a value, to find its subcommand past them.
_CELERY_VALUE_OPTIONS = frozenset(
    {"-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config", "--workdir"}
)


def celery_subcommand(argv: Sequence[str]) -> str | None:
    """What ``celery`` was asked to run (``worker``, ``flower``…); None outside its command line."""
    if not argv or not (Path(argv[0]).name == "celery" or argv[0].endswith("celery/__main__.py")):
        return None
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in _CELERY_VALUE_OPTIONS:
            next(arguments, None)
        elif not argument.startswith("-"):
            return argument
    return None


if celery_subcommand(sys.argv) == "flower":
    # Stored results are the tasks' own, contact details included; Flower shows task events,
    # which are masked, and never reads results, however it was started.
    app.conf.update(result_backend="disabled")

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
