"""The bench database: held against a second run, re-created and seeded through the project's
own code, and read by the benchmark for completions, commit times and the ledger check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.throughput.config import SHOP_ID, Config


def conninfo(database_url: str, dbname: str | None = None) -> dict[str, Any]:
    """psycopg connection arguments for a SQLAlchemy URL."""
    url = make_url(database_url)
    info = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": dbname or url.database,
    }
    return {key: value for key, value in info.items() if value is not None}


@contextmanager
def exclusive_run(config: Config) -> Iterator[None]:
    """Hold PostgreSQL advisory locks on the bench database's and the broker's names for the
    whole run: a second run against either would purge this one's queue or drop its database."""
    broker = urlsplit(config.broker)
    names = [
        f"loyalty-bench:database:{make_url(config.database_url).database}",
        f"loyalty-bench:broker:{broker._replace(netloc=f'{broker.hostname}:{broker.port}').geturl()}",
    ]
    with psycopg.connect(**conninfo(config.database_url, "postgres"), autocommit=True) as lock:
        for name in names:
            row = lock.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
            if not row or not row[0]:
                raise SystemExit(f"another benchmark run holds {name!r}: wait for it to end")
        yield


def recreate_database(config: Config) -> None:
    """Drop and create the database, then migrate it as the project does (alembic head)."""
    name = make_url(config.database_url).database or ""
    with psycopg.connect(**conninfo(config.database_url, "postgres"), autocommit=True) as server:
        server.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    from workers.db import Database

    Database(config.database_url).upgrade()


def seed_customers(config: Config) -> list[str]:
    """One shop and its customers, through the same store and handler the worker uses."""
    from models.services import command_engine
    from workers.db import Database

    database = Database(config.database_url)
    uow = database.unit_of_work()
    with uow:
        uow.shops.create(SHOP_ID, "Benchmark shop")
        uow.commit()
    customers = [f"customer-{number:05d}" for number in range(config.customers)]
    for customer_id in customers:
        command = {
            "command_id": f"upsert-{customer_id}",
            "shop_id": SHOP_ID,
            "customer_id": customer_id,
            "email": f"{customer_id}@bench.example.com",
        }
        result = command_engine.upsert_customer(uow, command)
        if result["status"] != "applied":
            raise RuntimeError(f"could not create {customer_id}: {result}")
    database.engine.dispose()
    return customers


class BenchDatabase:
    """The client's own reads of the bench database: completion counts, commit times, checks."""

    def __init__(self, config: Config) -> None:
        self.connection = psycopg.connect(**conninfo(config.database_url), autocommit=True)

    def close(self) -> None:
        self.connection.close()

    def committed(self, prefix: str) -> int:
        row = self.connection.execute(
            "SELECT count(*) FROM processed_commands WHERE shop_id = %s AND command_id LIKE %s",
            (SHOP_ID, prefix + "%"),
        ).fetchone()
        return int(row[0]) if row else 0

    def ledger_high_water(self) -> int:
        """The newest ledger id: an index lookup, cheap enough to poll while the worker drains
        (a count over processed_commands scans every bench row and would slow (a) down)."""
        row = self.connection.execute("SELECT coalesce(max(id), 0) FROM ledger_entries").fetchone()
        return int(row[0]) if row else 0

    def commit_times(self, prefix: str) -> dict[str, float]:
        """command_id -> processed_commands.created_at (epoch seconds)."""
        rows = self.connection.execute(
            "SELECT command_id, extract(epoch FROM created_at)::float8 FROM processed_commands"
            " WHERE shop_id = %s AND command_id LIKE %s",
            (SHOP_ID, prefix + "%"),
        ).fetchall()
        return dict(rows)

    def check_ledger(self, expected_rows: int) -> LedgerCheck:
        row = self.connection.execute(
            """
            SELECT
              (SELECT count(*) FROM ledger_entries),
              (SELECT coalesce(sum(applied), 0) FROM ledger_entries),
              (SELECT coalesce(sum(balance), 0) FROM accounts),
              (SELECT coalesce(sum(revision), 0) FROM accounts),
              (SELECT count(*) FROM accounts a
                 LEFT JOIN (SELECT account_id, sum(applied) AS total
                              FROM ledger_entries GROUP BY account_id) l ON l.account_id = a.id
                WHERE a.balance <> coalesce(l.total, 0)),
              (SELECT count(*) FROM processed_commands
                WHERE command_type = 'adjust_points' AND status <> 'applied')
                + (SELECT count(*) FROM rejected_messages)
            """
        ).fetchone()
        assert row is not None
        return LedgerCheck(expected_rows, *(int(value) for value in row))


@dataclass(frozen=True)
class LedgerCheck:
    """What a phase left in the ledger: a fast phase that lost or doubled commands is no ceiling."""

    expected_rows: int
    ledger_rows: int
    ledger_sum: int
    balance_sum: int
    revision_sum: int
    accounts_off: int
    rejected: int

    @property
    def ok(self) -> bool:
        return (
            self.ledger_rows == self.expected_rows
            and self.ledger_sum == self.balance_sum
            and self.revision_sum == self.ledger_rows
            and self.accounts_off == 0
            and self.rejected == 0
        )

    def describe(self) -> str:
        return (
            f"ledger rows {self.ledger_rows} (expected {self.expected_rows}), "
            f"sum of ledger deltas {self.ledger_sum} vs sum of balances {self.balance_sum}, "
            f"accounts whose ledger != balance: {self.accounts_off}, "
            f"sum of revisions {self.revision_sum}, rejected {self.rejected}"
            f" -> {'OK' if self.ok else 'FAILED'}"
        )
