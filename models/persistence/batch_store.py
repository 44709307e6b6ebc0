"""The SQL of a batch of commands (one live command, a worker's micro-batch or a migration's
chunk): a few reads per shop, then each table written with one batched statement (an INSERT for
a few rows, COPY for more)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import (
    JSON,
    Connection,
    Result,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from models.domain.adjustments import Points
from models.domain.planner import BatchPlan, BatchState, Key, WorkingAccount
from models.domain.side_effects import OutboxEntry
from models.persistence.tables import (
    accounts,
    integrations,
    ledger_entries,
    outbox,
    processed_commands,
    rejected_messages,
    shops,
    tiers,
)

_ACCOUNTS = (
    select(
        accounts.c.id,
        accounts.c.shop_id,
        accounts.c.customer_id,
        accounts.c.balance,
        accounts.c.lifetime,
        accounts.c.earned,
        accounts.c.redeemed,
        accounts.c.adjusted,
        accounts.c.revision,
        accounts.c.excluded,
        accounts.c.email,
        accounts.c.phone,
        accounts.c.first_name,
        accounts.c.last_name,
        accounts.c.last_activity_at,
        tiers.c.name.label("tier_name"),
        tiers.c.threshold.label("tier_threshold"),
    )
    .select_from(accounts.outerjoin(tiers, tiers.c.id == accounts.c.tier_id))
    .where(
        accounts.c.shop_id == bindparam("shop_id"),
        accounts.c.customer_id.in_(bindparam("keys", expanding=True)),
    )
    .order_by(accounts.c.customer_id)
)
_LOCK_ACCOUNTS = _ACCOUNTS.with_for_update(of=accounts)

_STORED = select(
    processed_commands.c.command_id, processed_commands.c.payload_hash, processed_commands.c.result
).where(
    processed_commands.c.shop_id == bindparam("shop_id"),
    processed_commands.c.command_id.in_(bindparam("keys", expanding=True)),
)
# The batch's shops, whether each has tiers, and its enabled providers (a row per provider): one
# round trip, which a batch of one command feels.
_SHOPS = (
    select(
        shops.c.id,
        select(tiers.c.id).where(tiers.c.shop_id == shops.c.id).exists().label("has_tiers"),
        integrations.c.provider,
    )
    .select_from(
        shops.outerjoin(
            integrations, (integrations.c.shop_id == shops.c.id) & integrations.c.enabled
        )
    )
    .where(shops.c.id.in_(bindparam("shop_ids", expanding=True)))
)

_CUSTOMER_FIELDS = ("email", "phone", "first_name", "last_name", "excluded")
_POINT_FIELDS = ("balance", "lifetime", "earned", "redeemed", "adjusted", "revision")

_UPDATE_ACCOUNT = (
    update(accounts)
    .where(accounts.c.id == bindparam("account_id"))
    .values(
        {name: bindparam(name) for name in (*_CUSTOMER_FIELDS, *_POINT_FIELDS)}
        | {"last_activity_at": bindparam("last_activity_at"), "updated_at": bindparam("now")}
    )
)
# PostgreSQL: a batch's thousand keys are looked up one by one in their index. Written as
# ``IN (...)``, a table that grew by a million rows since its last ANALYZE is thought small and
# scanned whole for every batch; a LATERAL subquery with LIMIT cannot be planned that way.
_EACH_KEY = "FROM unnest(CAST(:keys AS varchar[])) AS wanted(key) CROSS JOIN LATERAL"
_PG_ACCOUNTS = f"""
    SELECT a.id, a.shop_id, a.customer_id, a.balance, a.lifetime, a.earned, a.redeemed,
           a.adjusted, a.revision, a.excluded, a.email, a.phone, a.first_name, a.last_name,
           a.last_activity_at, t.name AS tier_name, t.threshold AS tier_threshold
      {_EACH_KEY} (SELECT * FROM accounts
                    WHERE shop_id = :shop_id AND customer_id = wanted.key LIMIT 1 {{lock}}) AS a
      LEFT JOIN tiers AS t ON t.id = a.tier_id
"""
_PG_STORED = text(
    f"""SELECT p.command_id, p.payload_hash, p.result
      {_EACH_KEY} (SELECT command_id, payload_hash, result FROM processed_commands
                    WHERE shop_id = :shop_id AND command_id = wanted.key LIMIT 1) AS p"""
)
_PG_STORED_IDS = text(
    f"""SELECT p.command_id
      {_EACH_KEY} (SELECT command_id FROM processed_commands
                    WHERE shop_id = :shop_id AND command_id = wanted.key LIMIT 1) AS p"""
)
# Sorted keys, so locks are taken in one order and two batches sharing accounts cannot deadlock.
_LOOKUPS = {
    "postgresql": {
        "accounts": text(_PG_ACCOUNTS.format(lock="")),
        "locked accounts": text(_PG_ACCOUNTS.format(lock="FOR UPDATE")),
        "stored": _PG_STORED,
        "stored ids": _PG_STORED_IDS,
    },
}
_STORED_IDS = select(processed_commands.c.command_id).where(
    processed_commands.c.shop_id == bindparam("shop_id"),
    processed_commands.c.command_id.in_(bindparam("keys", expanding=True)),
)

_RESERVE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"
)
_PORTABLE_LOOKUPS = {
    "accounts": _ACCOUNTS,
    "locked accounts": _LOCK_ACCOUNTS,
    "stored": _STORED,
    "stored ids": _STORED_IDS,
}

_COPY_FROM_ROWS = 20
"""Below this many rows an INSERT (one statement, ids returned) costs fewer round trips than
drawing ids and a COPY; above it COPY is several times cheaper for both sides."""

Outcome = tuple[str, str, str | None, bool | None]
"""A stored result's command type, status, error code and, for an upsert, whether it created."""


class BatchStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def read(self, customers: Iterable[Key], commands: Iterable[Key], *, lock: bool) -> BatchState:
        """The batch's accounts (locked unless ``lock`` is false, for a dry run) and stored
        results, and the shops they belong to."""
        customers_by_shop = _group(customers)
        commands_by_shop = _group(commands)
        shop_ids = sorted(customers_by_shop.keys() | commands_by_shop.keys())
        if not shop_ids:
            return BatchState(set(), set(), {}, {}, {})
        accounts_lookup = "locked accounts" if lock else "accounts"
        found: set[str] = set()
        with_tiers: set[str] = set()
        providers: dict[str, list[str]] = defaultdict(list)
        for row in self._db.execute(_SHOPS, {"shop_ids": shop_ids}):
            found.add(row.id)
            if row.has_tiers:
                with_tiers.add(row.id)
            if row.provider is not None:
                providers[row.id].append(row.provider)
        return BatchState(
            shops=found,
            shops_with_tiers=with_tiers,
            providers={shop_id: sorted(names) for shop_id, names in providers.items()},
            accounts={
                (shop_id, row.customer_id): _working_account(row)
                for shop_id, customer_ids in customers_by_shop.items()
                for row in self._lookup(accounts_lookup, shop_id, customer_ids)
            },
            stored={
                (shop_id, row.command_id): (row.payload_hash, row.result)
                for shop_id, command_ids in commands_by_shop.items()
                for row in self._lookup("stored", shop_id, command_ids)
            },
        )

    def _lookup(self, name: str, shop_id: str, keys: list[str]) -> Result[Any]:
        statements = _LOOKUPS.get(self._db.dialect.name, _PORTABLE_LOOKUPS)
        return self._db.execute(statements[name], {"shop_id": shop_id, "keys": keys})

    def stored_command_ids(self, shop_id: str, command_ids: list[str]) -> set[str]:
        return set(self._lookup("stored ids", shop_id, command_ids).scalars())

    def outcomes(self, shop_id: str, command_id_prefix: str) -> Counter[Outcome]:
        """How the commands whose ids start with the prefix ended, counted, including the
        refusals kept without a stored result (a reused id, an invalid command)."""
        stored = processed_commands.c
        like = f"{command_id_prefix}%"
        outcome = (
            stored.command_type,
            stored.status,
            stored.result["error"]["code"].as_string(),
            stored.result["created"].as_boolean(),
        )
        rows = self._db.execute(
            select(*outcome, func.count())
            .where(stored.shop_id == shop_id, stored.command_id.like(like))
            .group_by(*outcome)
        )
        counted: Counter[Outcome] = Counter()
        for command_type, status, code, created, count in rows:
            counted[(command_type, status, code, created)] = count
        refused = rejected_messages.c
        refusal = (refused.command_type, refused.code)
        for command_type, code, count in self._db.execute(
            select(*refusal, func.count())
            .where(refused.shop_id == shop_id, refused.command_id.like(like))
            .group_by(*refusal)
        ):
            counted[(command_type, "rejected", code, None)] += count
        return counted

    def write(self, plan: BatchPlan) -> list[OutboxEntry]:
        """Write the plan; returns the outbox rows to publish once the transaction commits."""
        touched = plan.touched_accounts()
        new = [account for account in touched if account.id is None]
        ids = self._insert(
            accounts,
            [
                _account_values(account)
                | {
                    "shop_id": account.shop_id,
                    "customer_id": account.customer_id,
                    "created_at": plan.now,
                    "updated_at": plan.now,
                }
                for account in new
            ],
        )
        for account, account_id in zip(new, ids, strict=True):
            account.id = account_id
        changed = [
            _account_values(account) | {"account_id": account.id, "now": plan.now}
            for account in touched
            if not account.created
        ]
        if changed:
            self._db.execute(_UPDATE_ACCOUNT, changed)
        self._insert(
            ledger_entries, [row.values | {"account_id": row.account.id} for row in plan.ledger]
        )
        self._insert(processed_commands, plan.processed)
        self._insert(rejected_messages, plan.rejected_messages)
        outbox_rows = [
            {
                "task_name": owed.task_name,
                "shop_id": owed.account.shop_id,
                "account_id": owed.account.id,
                "transaction_id": owed.transaction_id,
                "revision": owed.revision,
                "created_at": plan.now,
            }
            for owed in plan.side_effects
        ]
        ids = self._insert(outbox, outbox_rows)
        return [
            OutboxEntry(id_, owed.task_name)
            for id_, owed in zip(ids, plan.side_effects, strict=True)
        ]

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        """Insert the rows; returns their ids in order for a table with an ``id`` column."""
        if not rows:
            return []
        has_id = "id" in table.c and "id" not in rows[0]
        if self._db.dialect.name != "postgresql" or len(rows) < _COPY_FROM_ROWS:
            if not has_id:
                self._db.execute(insert(table), rows)
                return []
            returned = self._db.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
            )
            return list(returned.scalars())
        # COPY is several times cheaper than INSERT for both sides; ids are drawn first.
        ids: list[int] = []
        if has_id:
            ids = list(
                self._db.execute(_RESERVE_IDS, {"table": table.name, "count": len(rows)}).scalars()
            )
            rows = [row | {"id": id_} for row, id_ in zip(rows, ids, strict=True)]
        columns = list(rows[0])
        json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
        cursor = self._db.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [Json(row[name]) if name in json_columns else row[name] for name in columns]
                )
        return ids


def _group(keys: Iterable[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for shop_id, value in keys:
        grouped[shop_id].append(value)
    return {shop_id: sorted(values) for shop_id, values in grouped.items()}


def _working_account(row: Any) -> WorkingAccount:
    return WorkingAccount(
        id=row.id,
        shop_id=row.shop_id,
        customer_id=row.customer_id,
        points=Points(*(getattr(row, name) for name in _POINT_FIELDS)),
        excluded=row.excluded,
        email=row.email,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        tier=None if row.tier_name is None else (row.tier_name, row.tier_threshold),
        last_activity_at=row.last_activity_at,
    )


def _account_values(account: WorkingAccount) -> dict[str, Any]:
    points = account.points
    return {
        "email": account.email,
        "phone": account.phone,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "excluded": account.excluded,
        "balance": points.balance,
        "lifetime": points.lifetime,
        "earned": points.earned,
        "redeemed": points.redeemed,
        "adjusted": points.adjusted,
        "revision": points.revision,
        "last_activity_at": account.last_activity_at,
    }
