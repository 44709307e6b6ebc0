"""The two shapes of set-based SQL a batch of commands needs: a lookup of many keys within one
shop, and an insert of many rows (an INSERT for a few rows, COPY for more)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, Connection, Executable, Result, Table, insert, text

# PostgreSQL: a batch's thousand keys are looked up one by one in their index. Written as
# ``IN (...)``, a table that grew by a million rows since its last ANALYZE is thought small and
# scanned whole for every batch; a LATERAL subquery with LIMIT cannot be planned that way.
EACH_KEY = "FROM unnest(CAST(:keys AS varchar[])) AS wanted(key) CROSS JOIN LATERAL"

_RESERVE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"
)

COPY_FROM_ROWS = 20
"""Below this many rows an INSERT (one statement, ids returned) costs fewer round trips than
drawing ids and a COPY; above it COPY is several times cheaper for both sides."""


def lookup_keys(
    db: Connection, postgresql: Executable, portable: Executable, shop_id: str, keys: list[str]
) -> Result[Any]:
    """One statement for the shop's ``keys``: the LATERAL form on PostgreSQL, else ``IN``."""
    statement = postgresql if db.dialect.name == "postgresql" else portable
    return db.execute(statement, {"shop_id": shop_id, "keys": keys})


def insert_rows(db: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows; returns their ids in order for a table with an ``id`` column."""
    if not rows:
        return []
    has_id = "id" in table.c and "id" not in rows[0]
    if db.dialect.name != "postgresql" or len(rows) < COPY_FROM_ROWS:
        if not has_id:
            db.execute(insert(table), rows)
            return []
        returned = db.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        return list(returned.scalars())
    # COPY is several times cheaper than INSERT for both sides; ids are drawn first.
    ids: list[int] = []
    if has_id:
        ids = list(db.execute(_RESERVE_IDS, {"table": table.name, "count": len(rows)}).scalars())
        rows = [row | {"id": id_} for row, id_ in zip(rows, ids, strict=True)]
    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    cursor = db.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [Json(row[name]) if name in json_columns else row[name] for name in columns]
            )
    return ids
