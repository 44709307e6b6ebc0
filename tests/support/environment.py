"""Where the tests find their servers. Override with LOYALTY_TEST_* variables."""

from __future__ import annotations

import os

POSTGRES_SERVER = os.environ.get(
    "LOYALTY_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
DATABASE_NAME = os.environ.get("LOYALTY_TEST_DATABASE_NAME", "loyalty_test")
DATABASE_URL = f"{POSTGRES_SERVER}/{DATABASE_NAME}"
BROKER_URL = os.environ.get("LOYALTY_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
RESULT_BACKEND = os.environ.get("LOYALTY_TEST_RESULT_BACKEND", "redis://127.0.0.1:6379/15")
# Tests of the broker transport itself flush this database.
TRANSPORT_REDIS_URL = os.environ.get("LOYALTY_TEST_TRANSPORT_REDIS", "redis://127.0.0.1:6379/11")


def worker_environment(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LOYALTY_DATABASE_URL=DATABASE_URL,
        LOYALTY_BROKER_URL=BROKER_URL,
        LOYALTY_RESULT_BACKEND=RESULT_BACKEND,
    )
    env.update(overrides)
    return env
