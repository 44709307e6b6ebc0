"""The SQL the commands run, on the unit of work's connection.

Statements are built once at import and bound by name, so each execution reuses SQLAlchemy's
compiled form and psycopg's prepared statement. The hot path is one locking read and the writes
that commit with it: no ORM loads.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    String,
    Uuid,
    and_,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from models.adjustments import Adjustment, Points
from models.commands import AdjustPoints, UpsertCustomer
from models.side_effects import SYNC_TASK_PREFIX, OutboxEntry, sync_task_name
from models.tables import (
    accounts,
    integrations,
    ledger_entries,
    outbox,
    processed_commands,
    rejected_messages,
    shops,
    tiers,
)

_POINTS_COLUMNS = (
    accounts.c.balance,
    accounts.c.lifetime,
    accounts.c.earned,
    accounts.c.redeemed,
    accounts.c.adjusted,
    accounts.c.revision,
)
_CUSTOMER_COLUMNS = (
    accounts.c.email,
    accounts.c.phone,
    accounts.c.first_name,
    accounts.c.last_name,
    accounts.c.excluded,
)

_shop_tiers = tiers.alias("shop_tiers")

# The account row, locked for the rest of the transaction, with what was stored under this
# command's key. A duplicate that waited on the lock may not see the key its twin just committed;
# its insert into processed_commands then fails and the handler starts over.
_LOCK_ACCOUNT = (
    select(
        accounts.c.id,
        *_POINTS_COLUMNS,
        accounts.c.email,
        accounts.c.excluded,
        tiers.c.name.label("tier_name"),
        tiers.c.threshold.label("tier_threshold"),
        # Without tiers a recalculation has nothing to choose (editing tiers recalculates all).
        select(_shop_tiers.c.id)
        .where(_shop_tiers.c.shop_id == accounts.c.shop_id)
        .exists()
        .label("shop_has_tiers"),
        processed_commands.c.payload_hash.label("stored_hash"),
        processed_commands.c.result.label("stored_result"),
    )
    .select_from(
        accounts.outerjoin(tiers, tiers.c.id == accounts.c.tier_id).outerjoin(
            processed_commands,
            and_(
                processed_commands.c.shop_id == accounts.c.shop_id,
                processed_commands.c.command_id == bindparam("command_id"),
            ),
        )
    )
    .where(
        accounts.c.shop_id == bindparam("shop_id"),
        accounts.c.customer_id == bindparam("customer_id"),
    )
    .with_for_update(of=accounts)
)

_STORED_RESULT = select(processed_commands.c.payload_hash, processed_commands.c.result).where(
    processed_commands.c.shop_id == bindparam("shop_id"),
    processed_commands.c.command_id == bindparam("command_id"),
)

_SHOP_EXISTS = select(shops.c.id).where(shops.c.id == bindparam("shop_id"))

_UPDATE_POINTS = (
    update(accounts)
    .where(accounts.c.id == bindparam("account_id"))
    .values(
        balance=bindparam("balance"),
        lifetime=bindparam("lifetime"),
        adjusted=bindparam("adjusted"),
        revision=bindparam("revision"),
        last_activity_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)

# PostgreSQL runs the four writes of an applied adjustment as one statement, which also owes a
# sync to every provider the shop has enabled. They are the same rows the generic path below
# writes one by one (the tests run both).
_RECORD_ADJUSTMENT_AT_ONCE = text(
    """
    WITH points AS (
        UPDATE accounts
           SET balance = :balance, lifetime = :lifetime, adjusted = :adjusted,
               revision = :revision, last_activity_at = :now, updated_at = :now
         WHERE id = :account_id
    ), entry AS (
        INSERT INTO ledger_entries (
            transaction_id, shop_id, account_id, command_id, requested, applied,
            balance_before, balance_after, lifetime_before, lifetime_after,
            note, source, actor, created_at)
        VALUES (
            :transaction_id, :shop_id, :account_id, :command_id, :requested, :applied,
            :balance_before, :balance_after, :lifetime_before, :lifetime_after,
            :note, :source, :actor, :now)
    ), stored AS (
        INSERT INTO processed_commands (
            shop_id, command_id, command_type, payload_hash, status, result, created_at)
        VALUES (:shop_id, :command_id, :command_type, :payload_hash, :status, :result, :now)
    ), owed AS (
        INSERT INTO outbox (task_name, shop_id, account_id, transaction_id, revision, created_at)
        SELECT task_name, :shop_id, :account_id, :transaction_id, :revision, :now
          FROM (SELECT unnest(CAST(:side_effects AS varchar[])) AS task_name
                UNION ALL
                SELECT :sync_prefix || provider FROM integrations
                 WHERE shop_id = :shop_id AND enabled) AS owed_tasks
        RETURNING id, task_name
    )
    SELECT id, task_name FROM owed ORDER BY id
    """
).bindparams(
    bindparam("result", type_=JSON()),
    bindparam("transaction_id", type_=Uuid()),
    bindparam("side_effects", type_=ARRAY(String())),
    bindparam("now", type_=DateTime(timezone=True)),
)

_INSERT_LEDGER = insert(ledger_entries)
_INSERT_PROCESSED = insert(processed_commands)
_INSERT_OUTBOX = insert(outbox).returning(outbox.c.id, outbox.c.task_name)
_ENABLED_PROVIDERS = select(integrations.c.provider).where(
    integrations.c.shop_id == bindparam("shop_id"), integrations.c.enabled
)
_INSERT_REJECTED = insert(rejected_messages)
MAX_REJECTED_PAYLOAD = 65_536
"""Characters of a rejected payload kept: enough for any real command, and a 20 MB body sent to
fill the database costs 64 KB."""
_INSERT_ACCOUNT = insert(accounts).returning(accounts.c.id)


@dataclass(frozen=True, slots=True)
class LockedAccount:
    id: int
    points: Points
    excluded: bool
    email: str | None
    tier: tuple[str, int] | None
    shop_has_tiers: bool
    stored_hash: str | None
    stored_result: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> LockedAccount:
        return cls(
            id=row.id,
            points=Points(
                row.balance, row.lifetime, row.earned, row.redeemed, row.adjusted, row.revision
            ),
            excluded=row.excluded,
            email=row.email,
            tier=None if row.tier_name is None else (row.tier_name, row.tier_threshold),
            shop_has_tiers=row.shop_has_tiers,
            stored_hash=row.stored_hash,
            stored_result=row.stored_result,
        )


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    excluded: bool


class LoyaltyStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def lock_account(self, shop_id: str, customer_id: str, command_id: str) -> LockedAccount | None:
        row = self._db.execute(
            _LOCK_ACCOUNT,
            {"shop_id": shop_id, "customer_id": customer_id, "command_id": command_id},
        ).one_or_none()
        return None if row is None else LockedAccount.from_row(row)

    def customer_record(self, account_id: int) -> CustomerRecord:
        row = self._db.execute(select(*_CUSTOMER_COLUMNS).where(accounts.c.id == account_id)).one()
        return CustomerRecord(row.email, row.phone, row.first_name, row.last_name, row.excluded)

    def stored_result(self, shop_id: str, command_id: str) -> tuple[str, dict[str, Any]] | None:
        row = self._db.execute(
            _STORED_RESULT, {"shop_id": shop_id, "command_id": command_id}
        ).one_or_none()
        return None if row is None else (row.payload_hash, row.result)

    def shop_exists(self, shop_id: str) -> bool:
        return self._db.execute(_SHOP_EXISTS, {"shop_id": shop_id}).first() is not None

    def create_shop(
        self, shop_id: str, name: str | None = None, email_from: str | None = None
    ) -> bool:
        if self.shop_exists(shop_id):
            return False
        self._db.execute(insert(shops).values(id=shop_id, name=name, email_from=email_from))
        return True

    def account_summary(self, shop_id: str, customer_id: str) -> Any:
        return self._db.execute(
            select(
                accounts,
                tiers.c.name.label("tier_name"),
                tiers.c.threshold.label("tier_threshold"),
            )
            .select_from(accounts.outerjoin(tiers, tiers.c.id == accounts.c.tier_id))
            .where(accounts.c.shop_id == shop_id, accounts.c.customer_id == customer_id)
        ).one_or_none()

    def recent_ledger(self, account_id: int, limit: int) -> Sequence[Any]:
        return self._db.execute(
            select(ledger_entries)
            .where(ledger_entries.c.account_id == account_id)
            .order_by(ledger_entries.c.id.desc())
            .limit(limit)
        ).all()

    def record_adjustment(
        self,
        *,
        account_id: int,
        command: AdjustPoints,
        adjustment: Adjustment,
        transaction_id: uuid.UUID,
        now: datetime,
        side_effects: list[str],
        payload_hash: str,
        result: dict[str, Any],
    ) -> list[OutboxEntry]:
        """The account, its ledger entry, the owed side effects and the stored result; returns
        the outbox rows to publish once the transaction commits."""
        after = adjustment.after
        points = {
            "account_id": account_id,
            "balance": after.balance,
            "lifetime": after.lifetime,
            "adjusted": after.adjusted,
            "revision": after.revision,
            "now": now,
        }
        entry = {
            "transaction_id": transaction_id,
            "shop_id": command.shop_id,
            "account_id": account_id,
            "command_id": command.command_id,
            "requested": adjustment.requested,
            "applied": adjustment.applied,
            "balance_before": adjustment.before.balance,
            "balance_after": after.balance,
            "lifetime_before": adjustment.before.lifetime,
            "lifetime_after": after.lifetime,
            "note": command.note,
            "source": command.source,
            "actor": command.actor,
            "created_at": now,
        }
        stored = processed_row(
            command.shop_id, command.command_id, "adjust_points", payload_hash, result, now
        )
        if self._db.dialect.name == "postgresql":
            # One round trip instead of four: the hot path's largest cost is round trips.
            rows = self._db.execute(
                _RECORD_ADJUSTMENT_AT_ONCE,
                points
                | entry
                | stored
                | {"side_effects": side_effects, "sync_prefix": SYNC_TASK_PREFIX},
            )
            return [OutboxEntry(row.id, row.task_name) for row in rows]
        self._db.execute(_UPDATE_POINTS, points)
        self._db.execute(_INSERT_LEDGER, entry)
        self._db.execute(_INSERT_PROCESSED, stored)
        providers = self._db.execute(_ENABLED_PROVIDERS, {"shop_id": command.shop_id}).scalars()
        return self.owe(
            [*side_effects, *(sync_task_name(provider) for provider in providers)],
            shop_id=command.shop_id,
            account_id=account_id,
            transaction_id=transaction_id,
            revision=after.revision,
            now=now,
        )

    def owe(
        self,
        task_names: list[str],
        *,
        shop_id: str,
        account_id: int | None,
        transaction_id: uuid.UUID | None,
        revision: int | None,
        now: datetime,
    ) -> list[OutboxEntry]:
        """Outbox rows for side effects owed by the current transaction."""
        owed = []
        for task_name in task_names:
            row = self._db.execute(
                _INSERT_OUTBOX,
                {
                    "task_name": task_name,
                    "shop_id": shop_id,
                    "account_id": account_id,
                    "transaction_id": transaction_id,
                    "revision": revision,
                    "created_at": now,
                },
            ).one()
            owed.append(OutboxEntry(row.id, row.task_name))
        return owed

    def record_result(
        self,
        *,
        shop_id: str,
        command_id: str,
        command_type: str,
        payload_hash: str,
        result: dict[str, Any],
        now: datetime,
    ) -> None:
        self._db.execute(
            _INSERT_PROCESSED,
            processed_row(shop_id, command_id, command_type, payload_hash, result, now),
        )

    def record_rejected_message(
        self,
        *,
        command_type: str,
        shop_id: str | None,
        command_id: str | None,
        payload: Any,
        result: dict[str, Any],
        now: datetime,
    ) -> None:
        self._db.execute(
            _INSERT_REJECTED,
            rejected_message_row(command_type, shop_id, command_id, payload, result, now),
        )

    def create_account(self, command: UpsertCustomer, now: datetime) -> int:
        account_id: int = self._db.execute(
            _INSERT_ACCOUNT,
            {
                "shop_id": command.shop_id,
                "customer_id": command.customer_id,
                **_customer_changes(command),
                "excluded": bool(command.excluded),
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        return account_id

    def update_customer(self, account_id: int, command: UpsertCustomer, now: datetime) -> None:
        changes = _customer_changes(command)
        if command.excluded is not None:
            changes["excluded"] = command.excluded
        if changes:
            self._db.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(**changes, updated_at=now)
            )


def processed_row(
    shop_id: str,
    command_id: str,
    command_type: str,
    payload_hash: str,
    result: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "command_id": command_id,
        "command_type": command_type,
        "payload_hash": payload_hash,
        "status": result["status"],
        "result": result,
        "created_at": now,
    }


def rejected_message_row(
    command_type: str,
    shop_id: str | None,
    command_id: str | None,
    payload: Any,
    result: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    text = json.dumps(payload, default=repr)
    return {
        "command_type": command_type,
        "shop_id": shop_id,
        "command_id": command_id,
        "code": result["error"]["code"],
        "result": result,
        "payload": text[:MAX_REJECTED_PAYLOAD],
        "payload_truncated": len(text) > MAX_REJECTED_PAYLOAD,
        "created_at": now,
    }


def _customer_changes(command: UpsertCustomer) -> dict[str, Any]:
    fields = ("email", "phone", "first_name", "last_name")
    return {name: getattr(command, name) for name in fields if getattr(command, name) is not None}
