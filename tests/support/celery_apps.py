"""Celery apps of the test process for a broker other than the test environment's: configured by
``celeryconfig`` exactly as the workers' app is, for the settings of that environment (its queue
declarations and transport options depend on the broker URL)."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import pools

import celeryconfig
from workers.outbound.providers import PROVIDERS
from workers.settings import Settings


def app_for(env: Mapping[str, str], name: str = "test-publisher") -> Celery:
    app = Celery(name, set_as_current=False)
    settings = Settings.from_environment({**os.environ, **env})
    app.conf.update(celeryconfig.configuration(settings, PROVIDERS))
    return app


def close_app(app: Celery) -> None:
    """Close what the app opened: Celery's own close() only drops the broker pool."""
    pool: Any = app.pool  # celery-types does not know force_close_all
    with contextlib.suppress(Exception):
        pool.force_close_all()
    # kombu keeps one pool per broker for every app of the process: the next app of this broker
    # would be handed the closed one.
    broker = app.connection_for_write()
    for group in (pools.connections, pools.producers):
        with contextlib.suppress(KeyError):
            del group[broker]  # keyed by the connection's parameters: pop() would miss it
    app.close()
    if app.conf.result_backend not in (None, "disabled"):
        # An AsyncResult still pending unsubscribes when collected: let it, before closing.
        gc.collect()
        backend: Any = app.backend  # celery-types knows the base class only
        consumer = backend.result_consumer
        consumer.stop()
        # A result collected after this would reconnect just to unsubscribe, and leave that
        # socket open: there is nothing left to unsubscribe from. Celery 5.6 unsubscribes
        # whenever it still holds the (closed) pubsub, so it is let go as well.
        consumer.subscribed_to.clear()
        consumer._pubsub = None
        backend.client.connection_pool.disconnect()
