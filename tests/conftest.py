"""Test fixtures: a PostgreSQL database built by the Alembic migration once per run, a unit of work
per test inside a transaction that is rolled back, and a real worker on the test Redis broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from tests.support import environment

# The worker modules read their settings at import: point them at the test servers first.
os.environ.update(
    LOYALTY_DATABASE_URL=environment.DATABASE_URL,
    LOYALTY_BROKER_URL=environment.BROKER_URL,
    LOYALTY_RESULT_BACKEND=environment.RESULT_BACKEND,
)

from models.persistence.unit_of_work import UnitOfWork
from tests.support.celery_apps import close_app
from tests.support.worker import start_worker
from workers.app import app
from workers.db import Database, database
from workers.process import WorkerProcess
from workers.settings import forget_settings

# Generation speed and per-example time depend on what else the machine is doing; they are not
# what the properties test.
settings.register_profile("loyalty", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loyalty")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    server = create_engine(f"{environment.POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        for name in [environment.DATABASE_NAME, *_databases_of_ended_runs(connection)]:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{environment.DATABASE_NAME}"'))
    Database(environment.DATABASE_URL).upgrade()
    engine = create_engine(environment.DATABASE_URL)
    yield engine
    engine.dispose()
    with server.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS "{environment.DATABASE_NAME}" WITH (FORCE)')
        )
    server.dispose()


def _databases_of_ended_runs(connection: Connection) -> list[str]:
    """Databases named after a test run's process that is no longer running."""
    names = connection.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
        {"prefix": environment.DATABASE_PREFIX + "%"},
    ).scalars()
    ended = []
    for name in names:
        pid = name.removeprefix(environment.DATABASE_PREFIX)
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            ended.append(name)
    return ended


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """The test's outer transaction, rolled back at the end; read rows through it."""
    connection = engine.connect()
    outer = connection.begin()
    yield connection
    outer.rollback()
    connection.close()


@pytest.fixture
def uow(connection: Connection) -> Iterator[UnitOfWork]:
    """Commits inside the test only release savepoints. The task code's process-wide database
    uses the same sessions while the test runs."""
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    previous = database.sessions
    database.sessions = sessions
    yield UnitOfWork(sessions)
    database.sessions = previous


@pytest.fixture
def committed(engine: Engine) -> Iterator[Database]:
    """The task code's database committing for real, for what a rolled-back test transaction
    cannot show (separate connections, crashes between transactions). Each test uses its own
    shop."""
    committed = Database(environment.DATABASE_URL)
    previous = database.sessions
    database.sessions = committed.sessions
    yield committed
    database.sessions = previous
    committed.engine.dispose()


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads the environment it sets up: a process keeps the settings it read, so
    every change made through ``monkeypatch`` has the next use read them again."""
    forget_settings()
    setenv, delenv = monkeypatch.setenv, monkeypatch.delenv

    def setenv_afresh(name: str, value: str, prepend: str | None = None) -> None:
        setenv(name, value, prepend)
        forget_settings()

    def delenv_afresh(name: str, raising: bool = True) -> None:
        delenv(name, raising)
        forget_settings()

    monkeypatch.setattr(monkeypatch, "setenv", setenv_afresh)
    monkeypatch.setattr(monkeypatch, "delenv", delenv_afresh)
    yield
    forget_settings()


@pytest.fixture
def shop_id() -> str:
    return f"shop-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
def closed_app_at_exit() -> Iterator[None]:
    """The workers' app, used in process by many tests, is closed like any other test app, so
    no result it published is left to reconnect to Redis at interpreter exit."""
    yield
    close_app(app)


@pytest.fixture(scope="session")
def broker() -> None:
    for url in {environment.BROKER_URL, environment.RESULT_BACKEND}:
        with redis.Redis.from_url(url) as connection:
            connection.flushdb()


@pytest.fixture(scope="session")
def worker(engine: Engine, broker: None) -> Iterator[WorkerProcess]:
    process = start_worker(app, environment.worker_environment())
    yield process
    process.stop()
