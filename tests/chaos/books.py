"""Reading the scenario's own database: is the run settled yet, and what does it hold.

Nothing here trusts the workers' own reports: a command counts as applied when the database holds
its stored result and its ledger entry; the emails it owes are its ledger entries that increased
the balance (every customer has an email, every command asks for one).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import psycopg

from models.domain.emails import points_earned_message_id
from models.domain.names import SEND_POINTS_EARNED_EMAIL
from tests.chaos.workload import SHOP_ID, Workload

SETTLE_POLL = 1.0


@dataclass(frozen=True)
class Observation:
    """What the database says once the run settled (or its deadline passed)."""

    stored: frozenset[str]
    """Attempted commands with a stored result, applied or not."""
    applied_at: dict[str, float]
    """command_id -> ``created_at`` of its stored result, for the applied attempted commands."""
    applied_once: int
    duplicated: int
    balance_diffs: int
    ledger_not_balance: int
    owed_emails: dict[str, str]
    """Message-ID -> transaction id, for every applied increase of an attempted command."""
    dead_letters: int
    outbox_unfinished: int


class ScenarioDatabase:
    """The few read-only queries the count needs, on the scenario's own database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stored_and_unfinished(self, attempted: frozenset[str]) -> tuple[int, int]:
        """How many attempted commands have a stored result, and how many outbox rows are owed."""
        with psycopg.connect(self.url, connect_timeout=3) as db:
            stored = db.execute(
                "select command_id from processed_commands where shop_id = %s", (SHOP_ID,)
            ).fetchall()
            unfinished = db.execute(
                "select count(*) from outbox where shop_id = %s and completed_at is null",
                (SHOP_ID,),
            ).fetchone()
        assert unfinished is not None
        return len({row[0] for row in stored} & attempted), int(unfinished[0])

    def observe(self, workload: Workload, attempted: frozenset[str]) -> Observation:
        with psycopg.connect(self.url, connect_timeout=5) as db:
            results = db.execute(
                "select command_id, status, extract(epoch from created_at)::float8"
                " from processed_commands where shop_id = %s",
                (SHOP_ID,),
            ).fetchall()
            ledger = db.execute(
                "select command_id, transaction_id::text, applied from ledger_entries"
                " where shop_id = %s",
                (SHOP_ID,),
            ).fetchall()
            accounts = db.execute(
                "select a.customer_id, a.balance, coalesce(sum(l.applied), 0)"
                " from accounts a left join ledger_entries l on l.account_id = a.id"
                " where a.shop_id = %s group by a.id",
                (SHOP_ID,),
            ).fetchall()
            counts = db.execute(
                "select (select count(*) from dead_letters where shop_id = %(shop)s),"
                " (select count(*) from outbox where shop_id = %(shop)s and completed_at is null)",
                {"shop": SHOP_ID},
            ).fetchone()
        assert counts is not None
        expected = workload.expected_balances(set(attempted))
        entries = Counter(command_id for command_id, _, _ in ledger)
        applied_at = {c: at for c, status, at in results if c in attempted and status == "applied"}
        return Observation(
            stored=frozenset(c for c, _, _ in results if c in attempted),
            applied_at=applied_at,
            applied_once=sum(1 for c in applied_at if entries[c] == 1),
            duplicated=sum(1 for times in entries.values() if times > 1),
            balance_diffs=sum(1 for c, balance, _ in accounts if balance != expected.get(c)),
            ledger_not_balance=sum(1 for _, balance, total in accounts if balance != total),
            owed_emails={
                points_earned_message_id(tx): tx
                for command_id, tx, applied in ledger
                if command_id in attempted and applied > 0
            },
            dead_letters=int(counts[0]),
            outbox_unfinished=int(counts[1]),
        )


def email_fates(database: ScenarioDatabase, transactions: dict[str, str]) -> dict[str, str]:
    """Message-ID -> what the database says of that email (its delivery record and its outbox
    row), for the Message-IDs -> transaction ids asked; empty if the schema has moved on."""
    if not transactions:
        return {}
    try:
        with psycopg.connect(database.url, connect_timeout=5) as db:
            rows = db.execute(
                "select l.transaction_id::text, d.status, o.outcome, o.attempts"
                " from ledger_entries l"
                " left join email_deliveries d on d.transaction_id = l.transaction_id"
                " left join outbox o on o.transaction_id = l.transaction_id"
                " and o.task_name = %(task)s"
                " where l.shop_id = %(shop)s and l.transaction_id = any(%(ids)s::uuid[])",
                {
                    "task": SEND_POINTS_EARNED_EMAIL,
                    "shop": SHOP_ID,
                    "ids": list(transactions.values()),
                },
            ).fetchall()
    except psycopg.Error:
        return {}
    by_transaction = {
        tx: f"delivery {status or 'not recorded'}, outbox {outcome or 'unfinished'}"
        f" after {attempts} failed attempt(s)"
        for tx, status, outcome, attempts in rows
    }
    return {m: by_transaction.get(tx, "no ledger entry") for m, tx in transactions.items()}


def wait_settled(database: ScenarioDatabase, attempted: frozenset[str], deadline: float) -> float:
    """Wait until every attempted command has a stored result and no outbox row is owed (so no
    email can still go out), or until ``deadline`` (``time.time()``); returns the seconds waited.
    The database may still be recovering at first: its errors mean "not yet"."""
    started = time.time()
    while time.time() < deadline:
        try:
            stored, unfinished = database.stored_and_unfinished(attempted)
        except psycopg.Error:
            stored, unfinished = -1, -1
        if stored == len(attempted) and unfinished == 0:
            break
        time.sleep(SETTLE_POLL)
    return time.time() - started
