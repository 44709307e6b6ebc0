"""The command log: each processed command's stored result (its idempotency key) and the refused
messages that claimed no key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text

from models.persistence.set_based import EACH_KEY, insert_rows, lookup_keys
from models.persistence.tables import processed_commands, rejected_messages

Outcome = tuple[str, str, str | None, bool | None]
"""A stored result's command type, status, error code and, for an upsert, whether it created."""

_INSERT_REJECTED = insert(rejected_messages)

_STORED = select(
    processed_commands.c.command_id, processed_commands.c.payload_hash, processed_commands.c.result
).where(
    processed_commands.c.shop_id == bindparam("shop_id"),
    processed_commands.c.command_id.in_(bindparam("keys", expanding=True)),
)
_STORED_IDS = select(processed_commands.c.command_id).where(
    processed_commands.c.shop_id == bindparam("shop_id"),
    processed_commands.c.command_id.in_(bindparam("keys", expanding=True)),
)
_PG_STORED = text(
    f"""SELECT p.command_id, p.payload_hash, p.result
      {EACH_KEY} (SELECT command_id, payload_hash, result FROM processed_commands
                    WHERE shop_id = :shop_id AND command_id = wanted.key LIMIT 1) AS p"""
)
_PG_STORED_IDS = text(
    f"""SELECT p.command_id
      {EACH_KEY} (SELECT command_id FROM processed_commands
                    WHERE shop_id = :shop_id AND command_id = wanted.key LIMIT 1) AS p"""
)


class CommandLogStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def stored(self, shop_id: str, command_ids: list[str]) -> dict[str, tuple[str, Any]]:
        """The stored payload hash and result of those of the shop's commands already
        processed, one statement."""
        rows = lookup_keys(self._db, _PG_STORED, _STORED, shop_id, command_ids)
        return {row.command_id: (row.payload_hash, row.result) for row in rows}

    def stored_command_ids(self, shop_id: str, command_ids: list[str]) -> set[str]:
        rows = lookup_keys(self._db, _PG_STORED_IDS, _STORED_IDS, shop_id, command_ids)
        return set(rows.scalars())

    def record_many(self, processed: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> None:
        """A batch's stored results and refusals, a statement for each that has rows."""
        insert_rows(self._db, processed_commands, processed)
        insert_rows(self._db, rejected_messages, rejected)

    def record_rejected_message(self, row: dict[str, Any]) -> None:
        """One refused message (``models.domain.command_log.rejected_message_row``)."""
        self._db.execute(_INSERT_REJECTED, row)

    def processed_command(self, shop_id: str, command_id: str) -> Any:
        return self._db.execute(
            select(
                processed_commands.c.command_type,
                processed_commands.c.status,
                processed_commands.c.result,
                processed_commands.c.created_at,
            ).where(
                processed_commands.c.shop_id == shop_id,
                processed_commands.c.command_id == command_id,
            )
        ).one_or_none()

    def rejected_messages(self, shop_id: str, command_id: str, limit: int) -> Sequence[Any]:
        """Refusals that did not claim the id (invalid input, a reused id), newest first; a
        sender stuck in a loop can leave many, so at most ``limit``."""
        return self._db.execute(
            select(
                rejected_messages.c.id,
                rejected_messages.c.command_type,
                rejected_messages.c.code,
                rejected_messages.c.result,
                rejected_messages.c.payload,
                rejected_messages.c.payload_truncated,
                rejected_messages.c.created_at,
            )
            .where(
                rejected_messages.c.shop_id == shop_id,
                rejected_messages.c.command_id == command_id,
            )
            .order_by(rejected_messages.c.id.desc())
            .limit(limit)
        ).all()

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
