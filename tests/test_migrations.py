"""The Alembic migration is the schema: it matches the models and goes both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from models.persistence.tables import Base
from tests.support import environment
from workers.db import Database, alembic_config

SCRATCH = f"{environment.DATABASE_NAME}_migrations"


def test_the_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    server = create_engine(f"{environment.POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{SCRATCH}"'))
    yield f"{environment.POSTGRES_SERVER}/{SCRATCH}"
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
    server.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_downgrade_and_upgrade_again(backend: str, scratch_postgres: str, tmp_path: Path) -> None:
    url = scratch_postgres if backend == "postgresql" else f"sqlite:///{tmp_path}/loyalty.sqlite3"
    database = Database(url)

    database.upgrade()
    command.downgrade(alembic_config(url), "base")
    emptied = set(inspect(database.engine).get_table_names())
    database.upgrade()
    rebuilt = set(inspect(database.engine).get_table_names())
    database.engine.dispose()

    assert emptied == {"alembic_version"}
    assert {"accounts", "ledger_entries", "processed_commands", "outbox"} <= rebuilt
