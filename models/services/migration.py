"""Migrating a merchant: plan a checked file as bulk chunks, publish them, and watch the workers
apply them; or plan them against the database without changing anything (a dry run).

Nothing is enqueued while any row is bad (unless the caller skips bad rows), so a migration is
never half-applied by surprise. A chunk is one transaction, so it has been applied once its last
command has a stored result: progress is watched with indexed lookups, not by counting rows.

Publishing is injected (``SendChunk``): this module knows what a chunk is, not how the CLI gets
it onto ``loyalty.migrations``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from models.domain.clock import utc_now
from models.domain.commands import ADJUST_POINTS, UPSERT_CUSTOMER
from models.domain.migration import MigrationFile, Row
from models.domain.parsing import keys_to_read, parse_item
from models.domain.planner import plan_batch
from models.persistence.command_log import Outcome
from models.persistence.unit_of_work import UnitOfWork

_POLL_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Chunk:
    items: list[Any]
    first_line: int
    last_line: int

    @property
    def rows(self) -> int:
        return len(self.items) // 2

    @property
    def last_command_id(self) -> str:
        return str(self.items[-1]["command_id"])

    def describe(self) -> str:
        """What Flower and the logs show instead of the commands (which carry emails, phones)."""
        return f"[<{len(self.items)} commands: lines {self.first_line}-{self.last_line}>]"


SendChunk = Callable[[Chunk], None]
"""Publishes one chunk to the bulk task; results stay in the database, not the result backend."""


@dataclass(frozen=True, slots=True)
class Pending:
    last_command_id: str
    rows: int


def chunks(
    migration: MigrationFile, bad_lines: set[int], *, rows_per_chunk: int, send_email: bool
) -> Iterator[Chunk]:
    """Each good row as two items, its customer then its points, in file order."""
    rows: list[Row] = []

    def chunk() -> Chunk:
        items: list[Any] = []
        for row in rows:
            customer, points = migration.commands(row, send_email=send_email)
            items += [{UPSERT_CUSTOMER: customer}, points]
        return Chunk(items, rows[0].line, rows[-1].line)

    for row in migration.valid_rows(bad_lines):
        rows.append(row)
        if len(rows) == rows_per_chunk:
            yield chunk()
            rows = []
    if rows:
        yield chunk()


def enqueue(
    all_chunks: Iterator[Chunk], send_chunk: SendChunk, on_sent: Callable[[int], None]
) -> list[Pending]:
    """Publish every chunk; what is pending is each chunk's last command id and its rows."""
    pending = []
    for chunk in all_chunks:
        send_chunk(chunk)
        pending.append(Pending(chunk.last_command_id, chunk.rows))
        on_sent(chunk.rows)
    return pending


def applied_chunks(uow: UnitOfWork, shop_id: str, pending: list[Pending]) -> list[Pending]:
    """Which of the pending chunks have committed."""
    done: set[str] = set()
    with uow:
        for start in range(0, len(pending), _POLL_BATCH):
            ids = [chunk.last_command_id for chunk in pending[start : start + _POLL_BATCH]]
            done |= uow.command_log.stored_command_ids(shop_id, ids)
    return [chunk for chunk in pending if chunk.last_command_id in done]


def still_pending(pending: list[Pending], done: list[Pending]) -> list[Pending]:
    finished = {chunk.last_command_id for chunk in done}
    return [chunk for chunk in pending if chunk.last_command_id not in finished]


def outcomes(uow: UnitOfWork, migration: MigrationFile) -> Counter[Outcome]:
    with uow:
        return uow.command_log.outcomes(migration.shop_id, f"{migration.migration_id}-")


@dataclass
class Summary:
    """What one run did: the migration's outcomes after it, less those before it."""

    applied: int = 0
    customers_created: int = 0
    already_applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    @classmethod
    def between(cls, before: Counter[Outcome], after: Counter[Outcome]) -> Summary:
        summary = cls()
        summary.already_applied = sum(
            count
            for (command_type, status, _, _), count in before.items()
            if command_type == ADJUST_POINTS and status == "applied"
        )
        for (command_type, status, code, created), count in (after - before).items():
            if status != "applied":
                summary.rejected[code or status] += count
            elif command_type == ADJUST_POINTS:
                summary.applied += count
            elif created:
                summary.customers_created += count
        return summary


@dataclass
class DryRun:
    """What the migration would change, planned with the bulk task's own rules."""

    customers_created: int = 0
    customers_updated: int = 0
    balances_changed: int = 0
    points_before: int = 0
    points_after: int = 0
    already_applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    changes: list[str] = field(default_factory=list)


def dry_run(uow: UnitOfWork, all_chunks: Iterator[Chunk], *, sample: int) -> DryRun:
    report = DryRun()
    for chunk in all_chunks:
        items = [parse_item(item) for item in chunk.items]
        with uow:
            state = uow.batches.read(keys_to_read(items), lock=False)
        plan = plan_batch(items, state, utc_now())
        for item, result in zip(items, plan.results, strict=True):
            command = item.command
            assert command is not None  # the file was checked
            if (command.shop_id, command.command_id) in state.stored:
                report.already_applied += item.command_type == ADJUST_POINTS
            elif result["status"] != "applied":
                report.rejected[result["error"]["code"]] += 1
            elif item.command_type == UPSERT_CUSTOMER:
                report.customers_created += result["created"]
                report.customers_updated += not result["created"]
            else:
                _count_points(report, result, sample)
    return report


def _count_points(report: DryRun, result: dict[str, Any], sample: int) -> None:
    attributes = result["data"]["attributes"]
    before, after = attributes["points_before"], attributes["points_after"]
    report.points_before += before
    report.points_after += after
    report.balances_changed += before != after
    if len(report.changes) < sample:
        report.changes.append(
            f"{attributes['customer_id']}: balance {before} -> {after}, "
            f"lifetime points {result['account']['lifetime_points']}"
        )
