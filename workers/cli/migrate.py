"""``loyalty migrate SHOP FILE``: bring a merchant's customers and balances over from another
loyalty platform."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

from models.domain.migration import MigrationFile, RowError, detect_kind
from workers.cli import migration_steps as steps
from workers.db import database
from workers.settings import BulkSettings

_SHOWN_ERRORS = 20
_POLL_SECONDS = 1.0
_STALL_WARNING_SECONDS = 60


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
    settings = BulkSettings.from_environment()
    rows_per_chunk = chunk_rows or settings.migration_chunk_rows
    if 2 * rows_per_chunk > settings.max_commands:
        raise click.BadParameter(
            f"{rows_per_chunk} rows make {2 * rows_per_chunk} commands; a chunk holds at most "
            f"{settings.max_commands} (LOYALTY_BULK_MAX_COMMANDS)",
            param_hint="--chunk-rows",
        )
    try:
        content = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise click.ClickException(f"{file} is not UTF-8 text: {error}") from None
    with database.unit_of_work() as uow:
        if not uow.shops.exists(shop_id):
            raise click.ClickException(
                f"shop {shop_id!r} not found; create it first with `loyalty shop create`"
            )
    migration = MigrationFile(shop_id, content, detect_kind(file.name, content))

    checked = migration.check()
    checked_at = time.monotonic()
    error_file = steps.error_file_path(file)
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
    if good_rows == 0:
        click.echo("Nothing to apply.")
        return

    def planned_chunks() -> Iterator[steps.Chunk]:
        return steps.chunks(
            migration, checked.bad_lines, rows_per_chunk=rows_per_chunk, send_email=send_email
        )

    if dry_run:
        _print_dry_run(steps.dry_run(planned_chunks(), sample=10))
        return

    before = steps.outcomes(migration)
    with click.progressbar(length=good_rows, label="Enqueueing") as bar:
        pending = steps.enqueue(planned_chunks(), bar.update)
    enqueued_at = time.monotonic()
    if no_wait:
        click.echo(f"Enqueued {len(pending):,} chunks on loyalty.migrations.")
        return
    try:
        _watch(shop_id, pending, good_rows)
    except KeyboardInterrupt:
        click.echo(
            "\nStopped watching. The chunks stay queued and will be applied; run the same "
            "command again to see the outcome (nothing is applied twice).",
            err=True,
        )
        sys.exit(130)
    summary = steps.Summary.between(before, steps.outcomes(migration))
    finished_at = time.monotonic()
    elapsed = finished_at - started
    click.echo(
        f"Applied {summary.applied:,} balances ({summary.customers_created:,} customers created), "
        f"{summary.already_applied:,} already applied before, in {elapsed:,.1f}s "
        f"({good_rows / elapsed:,.0f} rows/s): checked in {checked_at - started:,.1f}s, "
        f"enqueued in {enqueued_at - checked_at:,.1f}s, all applied "
        f"{finished_at - enqueued_at:,.1f}s later."
    )
    if summary.rejected:
        rejected = ", ".join(f"{code} {count:,}" for code, count in summary.rejected.items())
        click.echo(f"Rejected: {rejected}. `loyalty commands show` explains each one.")
        sys.exit(1)


def _report_errors(errors: list[RowError], error_file: Path) -> None:
    steps.write_error_file(error_file, errors)
    click.echo(f"{len(errors):,} problems in {len({e.line for e in errors}):,} rows:", err=True)
    for error in errors[:_SHOWN_ERRORS]:
        click.echo(f"  line {error.line}: {error.field}: {error.reason}", err=True)
    if len(errors) > _SHOWN_ERRORS:
        click.echo(f"  ... and {len(errors) - _SHOWN_ERRORS:,} more", err=True)
    click.echo(f"Every problem is listed in {error_file}", err=True)


def _watch(shop_id: str, pending: list[steps.Pending], rows: int) -> None:
    last_progress = time.monotonic()
    warned = False
    with click.progressbar(length=rows, label="Applying  ") as bar:
        while pending:
            done = steps.applied_chunks(shop_id, pending)
            if done:
                finished = {chunk.last_command_id for chunk in done}
                pending = [chunk for chunk in pending if chunk.last_command_id not in finished]
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


def _print_dry_run(report: steps.DryRun) -> None:
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
