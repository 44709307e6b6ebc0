"""A merchant's migration file, row by row: what each row asks for, what is wrong with it, and
the two commands it becomes (create or update the customer, then set or move their points).

Pure: the file's content comes in as text. Command ids derive from the shop, the file's content
and the row's line, so running the same file again applies nothing twice, and a run that was
interrupted can simply be run again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from models.domain.commands import AdjustPoints, InvalidCommand, UpsertCustomer, parse_command

CUSTOMER_COLUMNS = ("customer_id", "email", "phone", "first_name", "last_name")
POINTS_COLUMNS = ("balance", "adjustment")
OPTIONAL_COLUMNS = ("lifetime_points", "note")
COLUMNS = (*CUSTOMER_COLUMNS, *POINTS_COLUMNS, *OPTIONAL_COLUMNS)
_INTEGER_COLUMNS = ("balance", "adjustment", "lifetime_points")
_WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]+$")

SOURCE = "migration"


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, Any]
    """Present cells only: an empty cell is an absent value."""
    cell_errors: tuple[RowError, ...] = ()
    """Cells that could not be read (left out of ``values``)."""


@dataclass(frozen=True, slots=True)
class FileCheck:
    rows: int
    """Rows with content, good or bad."""
    errors: list[RowError]

    @property
    def bad_lines(self) -> set[int]:
        return {error.line for error in self.errors}


@dataclass(frozen=True)
class MigrationFile:
    shop_id: str
    content: str
    kind: str
    """``csv`` or ``jsonl``."""

    @cached_property
    def migration_id(self) -> str:
        digest = hashlib.sha256(f"{self.shop_id}\0{self.content}".encode()).hexdigest()
        return f"mig-{digest[:20]}"

    def rows(self) -> Iterator[Row | RowError]:
        return _csv_rows(self.content) if self.kind == "csv" else _jsonl_rows(self.content)

    def commands(self, row: Row, *, send_email: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        return row_commands(
            row, shop_id=self.shop_id, migration_id=self.migration_id, send_email=send_email
        )

    def check(self) -> FileCheck:
        """Every problem in the file, by line; one row per customer."""
        errors: list[RowError] = []
        first_line: dict[str, int] = {}
        lines: set[int] = set()
        for row in self.rows():
            if isinstance(row, RowError):
                errors.append(row)
                if row.field != "header":
                    lines.add(row.line)
                continue
            lines.add(row.line)
            found = row_errors(row, *self.commands(row, send_email=False))
            customer_id = row.values.get("customer_id")
            if isinstance(customer_id, str) and not found:
                earlier = first_line.setdefault(customer_id, row.line)
                if earlier != row.line:
                    found.append(
                        RowError(
                            row.line,
                            "customer_id",
                            f"{customer_id!r} is already on line {earlier}; "
                            "a migration takes one row per customer",
                        )
                    )
            errors += found
        return FileCheck(len(lines), errors)

    def valid_rows(self, bad_lines: set[int]) -> Iterator[Row]:
        for row in self.rows():
            if isinstance(row, Row) and row.line not in bad_lines:
                yield row


def detect_kind(filename: str, content: str) -> str:
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if content.lstrip().startswith("{") else "csv"


def _csv_rows(content: str) -> Iterator[Row | RowError]:
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, None)
    if header is None:
        yield RowError(1, "header", "the file is empty; the first row must name the columns")
        return
    names = [name.strip() for name in header]
    header_errors = _header_errors(names)
    if header_errors:
        yield from header_errors
        return
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield RowError(line, "row", f"is not valid CSV: {error}")
            return
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield RowError(line, "row", f"has {len(cells)} cells; the header has {len(names)}")
            continue
        values: dict[str, Any] = {}
        errors = []
        for name, cell in zip(names, cells, strict=True):
            cell = cell.strip()
            if cell == "":
                continue
            if name in _INTEGER_COLUMNS:
                if not _WHOLE_NUMBER.match(cell):
                    errors.append(RowError(line, name, f"must be a whole number, got {cell!r}"))
                    continue
                values[name] = int(cell)
            else:
                values[name] = cell
        yield Row(line, values, tuple(errors))


def _header_errors(names: list[str]) -> list[RowError]:
    errors = []
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        errors.append(
            RowError(
                1,
                "header",
                f"unknown column(s) {', '.join(map(repr, unknown))}; "
                f"the columns are {', '.join(COLUMNS)}",
            )
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        errors.append(RowError(1, "header", f"repeated column(s) {', '.join(repeated)}"))
    if "customer_id" not in names:
        errors.append(RowError(1, "header", "the customer_id column is required"))
    if not set(POINTS_COLUMNS) & set(names):
        errors.append(RowError(1, "header", "a balance or an adjustment column is required"))
    return errors


def _jsonl_rows(content: str) -> Iterator[Row | RowError]:
    for line, text in enumerate(content.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            yield RowError(line, "row", f"is not valid JSON: {error.msg}")
            continue
        if not isinstance(record, dict):
            yield RowError(line, "row", "must be a JSON object")
            continue
        unknown = [key for key in record if key not in COLUMNS]
        if unknown:
            yield RowError(
                line,
                unknown[0],
                f"is not a known key; the keys are {', '.join(COLUMNS)}",
            )
            continue
        yield Row(line, {key: value for key, value in record.items() if value not in (None, "")})


def row_commands(
    row: Row, *, shop_id: str, migration_id: str, send_email: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row's customer upsert and its points adjustment, as the commands' JSON objects."""
    values = row.values
    customer = {
        "command_id": f"{migration_id}-{row.line}-customer",
        "shop_id": shop_id,
        **{name: values[name] for name in CUSTOMER_COLUMNS if name in values},
    }
    points = {
        "command_id": f"{migration_id}-{row.line}-points",
        "shop_id": shop_id,
        **{
            name: values[name]
            for name in ("customer_id", *POINTS_COLUMNS, *OPTIONAL_COLUMNS)
            if name in values
        },
        "send_email": send_email,
        "source": SOURCE,
    }
    return customer, points


def row_errors(row: Row, customer: dict[str, Any], points: dict[str, Any]) -> list[RowError]:
    """Everything wrong with a row, at most one reason per column."""
    errors = {error.field: error for error in row.cell_errors}
    if "balance" in row.values and "adjustment" in row.values:
        errors.setdefault(
            "balance", RowError(row.line, "balance", "give a balance or an adjustment, not both")
        )
    elif not set(POINTS_COLUMNS) & (row.values.keys() | errors.keys()):
        errors["balance"] = RowError(row.line, "balance", "a balance or an adjustment is required")
    for model, command in ((UpsertCustomer, customer), (AdjustPoints, points)):
        try:
            parse_command(model, command)
        except InvalidCommand as invalid:
            for error in invalid.errors:
                field = error["field"]
                if field in POINTS_COLUMNS and errors.keys() & set(POINTS_COLUMNS):
                    continue  # the points columns already have their reason
                errors.setdefault(field, RowError(row.line, field, error["reason"]))
    return list(errors.values())
