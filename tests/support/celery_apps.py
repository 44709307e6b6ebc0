"""Celery apps of the test process for a broker other than the test environment's: configured by
``celeryconfig`` exactly as the workers' app is, read afresh with that environment (its queue
declarations and transport options depend on the broker URL it is read with)."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from celery import Celery
from kombu import pools

from workers.process import ROOT


def app_for(env: Mapping[str, str], name: str = "test-publisher") -> Celery:
    app = Celery(name, set_as_current=False)
    app.config_from_object(_celeryconfig_for(env))
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


def _celeryconfig_for(env: Mapping[str, str]) -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_celeryconfig", ROOT / "celeryconfig.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with _environment({k: v for k, v in env.items() if k.startswith("LOYALTY_")}):
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ for the block (before any thread that reads it starts)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
