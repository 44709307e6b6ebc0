"""Every setting of the worker, read from the environment once per process (``settings()``).

With none set, everything lives in SQLite files under ``LOYALTY_DATA_DIR`` (default ``.loyalty``):
the database, the broker (kombu's SQLAlchemy transport) and the result backend, so the service
runs on a plain Python install with no servers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workers.outbound.mailer.settings import SmtpSettings
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.secrets import SECRET_KEY_VARIABLE

Environ = Mapping[str, str]


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    result_backend: str
    redelivery: RedeliverySettings
    side_effects: SideEffectSettings
    batches: BatchSettings
    bulk: BulkSettings
    providers: ProviderSettings
    smtp: SmtpSettings
    secret_keys: tuple[str, ...] = field(repr=False)
    """``LOYALTY_SECRET_KEY``: the keys the providers' API keys are encrypted with, newest
    first (comma-separated, for rotation)."""

    @classmethod
    def from_environment(cls, environ: Environ | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("LOYALTY_DATA_DIR", ".loyalty")).resolve()
        return cls(
            database_url=env.get(
                "LOYALTY_DATABASE_URL", f"sqlite:///{data_dir / 'loyalty.sqlite3'}"
            ),
            broker_url=env.get(
                "LOYALTY_BROKER_URL", f"sqla+sqlite:///{data_dir / 'broker.sqlite3'}"
            ),
            result_backend=env.get(
                "LOYALTY_RESULT_BACKEND", f"db+sqlite:///{data_dir / 'results.sqlite3'}"
            ),
            redelivery=RedeliverySettings.from_environment(env),
            side_effects=SideEffectSettings.from_environment(env),
            batches=BatchSettings.from_environment(env),
            bulk=BulkSettings.from_environment(env),
            providers=ProviderSettings.from_environment(env),
            smtp=SmtpSettings.from_environment(env),
            secret_keys=tuple(
                part.strip() for part in env.get(SECRET_KEY_VARIABLE, "").split(",") if part.strip()
            ),
        )


_lock = threading.Lock()
_current: Settings | None = None


def settings() -> Settings:
    """This process's settings: read from the environment on first use, then kept (read on
    every message: no lock once they are there)."""
    global _current
    current = _current
    if current is not None:
        return current
    with _lock:
        if _current is None:
            _current = Settings.from_environment()
        return _current


def forget_settings() -> None:
    """Read the environment again on next use (tests that change it)."""
    global _current
    with _lock:
        _current = None


def ensure_data_dir(settings: Settings) -> None:
    """SQLite creates files but not their directories."""
    for url in (settings.database_url, settings.broker_url, settings.result_backend):
        if "sqlite:///" in url:
            Path(url.split("sqlite:///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)


def _env_number(env: Environ, name: str, default: float, unit: str = "seconds") -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


MIN_REDELIVERY_BOUND = 20.0


@dataclass(frozen=True)
class RedeliverySettings:
    """``LOYALTY_REDELIVERY_BOUND``: the longest a message received by a worker that dies may wait
    before another worker applies it. Everything that holds a message derives from it.

    Redis hands an unacknowledged message to another worker once it is ``visibility_timeout`` old,
    found by a sweep every ``restore_interval``: half the bound, plus a sweep, plus a restart. So
    nothing may hold a message longer than the visibility timeout: a task's time limit is half of
    it, and waits (retries, sync delays) live on outbox rows, never in the broker."""

    bound: float

    @classmethod
    def from_environment(cls, environ: Environ | None = None) -> RedeliverySettings:
        env = os.environ if environ is None else environ
        bound = _env_number(env, "LOYALTY_REDELIVERY_BOUND", 120)
        if bound < MIN_REDELIVERY_BOUND:
            raise ValueError(
                f"LOYALTY_REDELIVERY_BOUND must be at least {MIN_REDELIVERY_BOUND:g} seconds, "
                f"got {bound:g}"
            )
        return cls(bound=bound)

    @property
    def visibility_timeout(self) -> int:
        return int(self.bound / 2)

    @property
    def restore_interval(self) -> int:
        return max(1, int(self.bound / 12))

    @property
    def task_time_limit(self) -> int:
        return int(self.visibility_timeout / 2)

    @property
    def task_soft_time_limit(self) -> int:
        return int(self.task_time_limit * 0.8)

    @property
    def fault_retry_window(self) -> float:
        """How long a task keeps retrying a database fault in place before it hands its message
        back to the broker: well inside the soft time limit, so the hand-back always happens."""
        return self.task_soft_time_limit / 2


@dataclass(frozen=True)
class SideEffectSettings:
    """How the outbox relay and the side-effect tasks pace themselves (seconds unless noted).
    A dispatched row whose task has not finished within the redelivery bound is published again:
    its message was lost, or its worker died."""

    relay_interval: float
    dispatch_grace: float
    redispatch_after: float
    sync_delay: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    expiry_interval: float
    """``LOYALTY_EXPIRY_INTERVAL``: seconds between two expiry runs (beat)."""

    @classmethod
    def from_environment(cls, environ: Environ | None = None) -> SideEffectSettings:
        env = os.environ if environ is None else environ
        return cls(
            relay_interval=_env_number(env, "LOYALTY_OUTBOX_RELAY_INTERVAL", 1),
            dispatch_grace=_env_number(env, "LOYALTY_OUTBOX_GRACE", 10),
            redispatch_after=RedeliverySettings.from_environment(env).bound,
            sync_delay=_env_number(env, "LOYALTY_SYNC_DELAY", 2),
            max_attempts=max(1, int(_env_number(env, "LOYALTY_SIDE_EFFECT_MAX_ATTEMPTS", 10))),
            backoff_base=_env_number(env, "LOYALTY_RETRY_BACKOFF_BASE", 1),
            backoff_cap=300,
            expiry_interval=_env_number(env, "LOYALTY_EXPIRY_INTERVAL", 3600),
        )


@dataclass(frozen=True)
class BatchSettings:
    """How the worker groups live commands into batches of at most ``max_commands``
    (``LOYALTY_BATCH_MAX_COMMANDS``), each one transaction. While a pool process is busy, a batch
    keeps filling for ``max_wait`` seconds (``LOYALTY_BATCH_MAX_WAIT_MS``); see
    ``tasks.batching``."""

    max_commands: int
    max_wait: float

    @classmethod
    def from_environment(cls, environ: Environ | None = None) -> BatchSettings:
        env = os.environ if environ is None else environ
        max_wait_ms = _env_number(env, "LOYALTY_BATCH_MAX_WAIT_MS", 5, "milliseconds")
        if max_wait_ms <= 0:
            raise ValueError(f"LOYALTY_BATCH_MAX_WAIT_MS must be above 0, got {max_wait_ms:g}")
        return cls(
            max_commands=_env_count(env, "LOYALTY_BATCH_MAX_COMMANDS", 100),
            max_wait=max_wait_ms / 1000,
        )

    @property
    def prefetch(self) -> int:
        """Messages a worker may hold: two batches, one applied while the next fills."""
        return 2 * self.max_commands


@dataclass(frozen=True)
class BulkSettings:
    """How big a bulk chunk may be (the worker refuses larger ones) and how big the migration
    makes them; a chunk is one transaction, so it holds its accounts' locks until it commits."""

    max_commands: int
    migration_chunk_rows: int

    @classmethod
    def from_environment(cls, environ: Environ | None = None) -> BulkSettings:
        env = os.environ if environ is None else environ
        max_commands = _env_count(env, "LOYALTY_BULK_MAX_COMMANDS", 2000)
        rows = _env_count(env, "LOYALTY_MIGRATION_CHUNK_ROWS", 1000)
        return cls(max_commands=max_commands, migration_chunk_rows=rows)


def _env_count(env: Environ, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)
