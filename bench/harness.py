"""What the standalone benchmarks (``bench.migration``, ``bench.soak``) share: progress lines, a
database of their own, and the environment their ``loyalty`` and worker processes run in."""

from __future__ import annotations

import os

import psycopg

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def say(message: str) -> None:
    print(message, flush=True)


def loyalty_environment(database: str, broker: str, results: str) -> dict[str, str]:
    """This process's environment, pointed at the benchmark's database, broker and results."""
    env = dict(os.environ)
    env.update(
        LOYALTY_DATABASE_URL=f"{SERVER}/{database}",
        LOYALTY_BROKER_URL=broker,
        LOYALTY_RESULT_BACKEND=results,
    )
    return env


def recreate_database(database: str) -> None:
    """An empty database, whatever an earlier run left (its connections are ended)."""
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{database}"')
