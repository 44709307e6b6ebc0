"""``loyalty migrate SHOP FILE``: bring a merchant's customers and balances over from another
loyalty platform.

The use case (planning chunks, the dry run, which chunks are applied) is
``models.services.migration``; this module reads the file, writes the error file, publishes the
chunks on ``loyalty.migrations`` and prints."""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from models.domain.migration import FileCheck, MigrationFile, RowError, detect_kind
from models.domain.names import ADJUST_POINTS_BULK_TASK, MIGRATIONS_QUEUE
from models.services import migration as service
from workers.app import app
from workers.db import database
from workers.settings import settings as current_settings

_SHOWN_ERRORS = 20
_POLL_SECONDS = 1.0
_STALL_WARNING_SECONDS = 60
_DRY_RUN_SAMPLE = 10


@click.command("migrate")
@click.argument("shop_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--skip-invalid", is_flag=True, help="Apply the good rows even if some are bad.")
@click.option("--send-email", is_flag=True, help="Send points-earned emails (off by default).")
@click.option(
    "--chunk-rows",
    type=click.IntRange(1),
    help="Rows per bulk chunk, one transaction each [default: LOYALTY_MIGRATION_CHUNK_ROWS, 1000].",
)
@click.option("--no-wait", is_flag=True, help="Enqueue, then return without watching.")
def migrate(
    shop_id: str,
    file: Path,
    dry_run: bool,
    skip_invalid: bool,
    send_email: bool,
    chunk_rows: int | None,
    no_wait: bool,
) -> None:
    """Import FILE's customers and points into SHOP_ID.

    FILE is CSV with a header row, or JSON Lines, with the keys customer_id, email, phone,
    first_name, last_name, then balance (set it) or adjustment (move it), and optionally
    lifetime_points and note. The whole file is checked first; every bad row is reported, with
    its line, in FILE.errors.csv. Running the same file again applies nothing twice.
    """
    started = time.monotonic()
    rows_per_chunk = _rows_per_chunk(chunk_rows)
    migration = _read_migration(shop_id, file)
    checked = migration.check()
    checked_at = time.monotonic()
    good_rows = _report_check(file, checked, skip_invalid)
    if good_rows == 0:
        click.echo("Nothing to apply.")
        return

    def planned_chunks() -> Iterator[service.Chunk]:
        return service.chunks(
            migration, checked.bad_lines, rows_per_chunk=rows_per_chunk, send_email=send_email
        )

    uow = database.unit_of_work()
    if dry_run:
        _print_dry_run(service.dry_run(uow, planned_chunks(), sample=_DRY_RUN_SAMPLE))
        return
    before = service.outcomes(uow, migration)
    pending = _enqueue(planned_chunks(), good_rows)
    enqueued_at = time.monotonic()
    if no_wait:
        click.echo(f"Enqueued {len(pending):,} chunks on loyalty.migrations.")
        return
    _watch_until_applied(shop_id, pending, good_rows)
    summary = service.Summary.between(before, service.outcomes(uow, migration))
    _print_summary(summary, good_rows, _Timings(started, checked_at, enqueued_at, time.monotonic()))


def _rows_per_chunk(chunk_rows: int | None) -> int:
    """A chunk is one bulk task, so its two commands a row must fit LOYALTY_BULK_MAX_COMMANDS."""
    settings = current_settings().bulk
    rows_per_chunk = chunk_rows or settings.migration_chunk_rows
    if 2 * rows_per_chunk > settings.max_commands:
        raise click.BadParameter(
            f"{rows_per_chunk} rows make {2 * rows_per_chunk} commands; a chunk holds at most "
            f"{settings.max_commands} (LOYALTY_BULK_MAX_COMMANDS)",
            param_hint="--chunk-rows",
        )
    return rows_per_chunk


def _read_migration(shop_id: str, file: Path) -> MigrationFile:
    try:
        content = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise click.ClickException(f"{file} is not UTF-8 text: {error}") from None
    with database.unit_of_work() as uow:
        if not uow.shops.exists(shop_id):
            raise click.ClickException(
                f"shop {shop_id!r} not found; create it first with `loyalty shop create`"
            )
    return MigrationFile(shop_id, content, detect_kind(file.name, content))


def _report_check(file: Path, checked: FileCheck, skip_invalid: bool) -> int:
    """The good rows' count; exits 1 on bad rows unless they are skipped. The error file is
    written when there are problems, and removed when a corrected file has none."""
    error_file = _error_file_path(file)
    good_rows = checked.rows - len(checked.bad_lines)
    click.echo(f"{file}: {checked.rows:,} rows, {good_rows:,} good")
    if checked.errors:
        _report_errors(checked.errors, error_file)
        if not skip_invalid:
            click.echo(
                "Nothing was applied. Fix the rows, or apply the good ones with --skip-invalid."
            )
            sys.exit(1)
    else:
        error_file.unlink(missing_ok=True)
    return good_rows


def _error_file_path(path: Path) -> Path:
    return path.with_name(path.name + ".errors.csv")


def _write_error_file(path: Path, errors: list[RowError]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "field", "reason"])
        writer.writerows((error.line, error.field, error.reason) for error in errors)


def _report_errors(errors: list[RowError], error_file: Path) -> None:
    _write_error_file(error_file, errors)
    click.echo(f"{len(errors):,} problems in {len({e.line for e in errors}):,} rows:", err=True)
    for error in errors[:_SHOWN_ERRORS]:
        click.echo(f"  line {error.line}: {error.field}: {error.reason}", err=True)
    if len(errors) > _SHOWN_ERRORS:
        click.echo(f"  ... and {len(errors) - _SHOWN_ERRORS:,} more", err=True)
    click.echo(f"Every problem is listed in {error_file}", err=True)


@contextmanager
def chunk_sender() -> Iterator[service.SendChunk]:
    """Publishes chunks to the bulk task on ``loyalty.migrations``, all on one connection. Results
    stay in the database: the backend would otherwise hold every command's result twice."""
    with app.producer_or_acquire() as producer:

        def send_chunk(chunk: service.Chunk) -> None:
            app.send_task(
                ADJUST_POINTS_BULK_TASK,
                args=[chunk.items],
                queue=MIGRATIONS_QUEUE,
                routing_key=MIGRATIONS_QUEUE,
                ignore_result=True,
                argsrepr=chunk.describe(),
                producer=producer,
                retry=True,
            )

        yield send_chunk


def _enqueue(chunks: Iterator[service.Chunk], rows: int) -> list[service.Pending]:
    with click.progressbar(length=rows, label="Enqueueing") as bar, chunk_sender() as send_chunk:
        return service.enqueue(chunks, send_chunk, bar.update)


def _watch_until_applied(shop_id: str, pending: list[service.Pending], rows: int) -> None:
    """Ctrl-C stops the watching only: what is queued is applied anyway, exit status 130."""
    try:
        _watch(shop_id, pending, rows)
    except KeyboardInterrupt:
        click.echo(
            "\nStopped watching. The chunks stay queued and will be applied; run the same "
            "command again to see the outcome (nothing is applied twice).",
            err=True,
        )
        sys.exit(130)


def _watch(shop_id: str, pending: list[service.Pending], rows: int) -> None:
    uow = database.unit_of_work()
    last_progress = time.monotonic()
    warned = False
    with click.progressbar(length=rows, label="Applying  ") as bar:
        while pending:
            done = service.applied_chunks(uow, shop_id, pending)
            if done:
                pending = service.still_pending(pending, done)
                bar.update(sum(chunk.rows for chunk in done))
                last_progress = time.monotonic()
            elif not warned and time.monotonic() - last_progress > _STALL_WARNING_SECONDS:
                click.echo(
                    f"\nNo progress for {_STALL_WARNING_SECONDS}s: is a worker consuming "
                    "loyalty.migrations? Still watching (Ctrl-C stops watching, not the work).",
                    err=True,
                )
                warned = True
            if pending:
                time.sleep(_POLL_SECONDS)


@dataclass(frozen=True, slots=True)
class _Timings:
    started: float
    checked: float
    enqueued: float
    finished: float


def _print_summary(summary: service.Summary, rows: int, at: _Timings) -> None:
    """What this run applied and how long each phase took; exit status 1 if any was rejected."""
    elapsed = at.finished - at.started
    click.echo(
        f"Applied {summary.applied:,} balances ({summary.customers_created:,} customers created), "
        f"{summary.already_applied:,} already applied before, in {elapsed:,.1f}s "
        f"({rows / elapsed:,.0f} rows/s): checked in {at.checked - at.started:,.1f}s, "
        f"enqueued in {at.enqueued - at.checked:,.1f}s, all applied "
        f"{at.finished - at.enqueued:,.1f}s later."
    )
    if summary.rejected:
        rejected = ", ".join(f"{code} {count:,}" for code, count in summary.rejected.items())
        click.echo(f"Rejected: {rejected}. `loyalty commands show` explains each one.")
        sys.exit(1)


def _print_dry_run(report: service.DryRun) -> None:
    click.echo("Dry run: nothing was changed. The migration would")
    click.echo(
        f"  create {report.customers_created:,} customers and update {report.customers_updated:,}"
    )
    net = report.points_after - report.points_before
    click.echo(
        f"  change {report.balances_changed:,} balances: {report.points_before:,} points in "
        f"total now, {report.points_after:,} after ({net:+,})"
    )
    if report.already_applied:
        click.echo(f"  skip {report.already_applied:,} rows already applied by an earlier run")
    for code, count in report.rejected.items():
        click.echo(f"  reject {count:,} commands: {code}")
    if report.changes:
        click.echo("First balances:")
        for change in report.changes:
            click.echo(f"  {change}")
