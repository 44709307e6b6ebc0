"""Fixtures for task tests that need what a real worker has: commits that stick."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.support import environment
from workers.db import Database, database


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
