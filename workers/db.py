"""The database of this process: the engine is built on first use and renewed after a fork, so
no pooled connection is ever shared between worker processes."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from alembic import command as alembic_command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from models.persistence.unit_of_work import Publish, UnitOfWork
from workers.settings import ensure_data_dir, settings


def build_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    # No pre-ping: it costs a round trip per command. A dead connection raises OperationalError,
    # the pool drops it and the task retries.
    # Parameters stay out of error messages: an upsert's carry the customer's email and phone.
    return create_engine(url, pool_size=2, max_overflow=4, pool_recycle=1800, hide_parameters=True)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let BEGIN below open the transactions
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # SQLite has no row locks; taking the write lock up front is its SELECT ... FOR UPDATE.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """A database at ``url``; without one, this process's (``settings()``), found on first use."""

    def __init__(self, url: str | None = None, publish: Publish | None = None) -> None:
        self._url = url
        self.publish = publish
        """What its units of work call with the outbox rows each commit owes."""
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            configured = settings()
            ensure_data_dir(configured)
            self._url = configured.database_url
        return self._url

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.url)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        return self._sessions

    @sessions.setter
    def sessions(self, factory: sessionmaker[Session]) -> None:
        self._sessions = factory

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.publish)

    def after_fork(self) -> None:
        if self._engine is not None:
            self._engine.dispose(close=False)

    def upgrade(self, revision: str = "head") -> None:
        alembic_command.upgrade(alembic_config(self.url), revision)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


database = Database()
"""The process's database, built on first use."""
