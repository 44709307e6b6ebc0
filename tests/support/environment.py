"""Where the tests find their servers. Override with LOYALTY_TEST_* variables."""

from __future__ import annotations

import os

POSTGRES_SERVER = os.environ.get(
    "LOYALTY_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
DATABASE_PREFIX = "loyalty_test_run_"
# Each run has a database of its own (its processes inherit the name), so two runs on one machine
# never drop each other's; a run that was killed leaves its database for the next run to drop.
DATABASE_NAME = os.environ.setdefault(
    "LOYALTY_TEST_DATABASE_NAME", f"{DATABASE_PREFIX}{os.getpid()}"
)
DATABASE_URL = f"{POSTGRES_SERVER}/{DATABASE_NAME}"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("LOYALTY_TEST_REDIS_PORT", "6379"))
"""The Redis server every test uses; a second test run on the machine points at its own."""


def redis_url(db: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


BROKER_URL = os.environ.get("LOYALTY_TEST_BROKER_URL", redis_url(14))
RESULT_BACKEND = os.environ.get("LOYALTY_TEST_RESULT_BACKEND", redis_url(15))
# Tests of the broker transport itself flush this database.
TRANSPORT_REDIS_URL = os.environ.get("LOYALTY_TEST_TRANSPORT_REDIS", redis_url(11))


def worker_environment(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LOYALTY_DATABASE_URL=DATABASE_URL,
        LOYALTY_BROKER_URL=BROKER_URL,
        LOYALTY_RESULT_BACKEND=RESULT_BACKEND,
    )
    env.update(overrides)
    return env
