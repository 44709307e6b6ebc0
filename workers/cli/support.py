"""Support commands that answer "where did my points go": a customer's ledger, page by page, and
what became of one command."""

from __future__ import annotations

import json
import shlex
from typing import Any

import click

from models.domain.results import timestamp
from workers.db import database
from workers.pii import mask

MAX_HISTORY_PAGE = 500
# A sender stuck in a loop can leave thousands of refusals under one id; the newest tell the story.
REFUSED_ATTEMPTS_SHOWN = 20


@click.command("history")
@click.argument("shop_id")
@click.argument("customer_id")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_HISTORY_PAGE),
    default=20,
    show_default=True,
    help="Entries per page.",
)
@click.option(
    "--before",
    type=click.IntRange(min=1),
    help="Continue after the previous page: only entries older than this entry id.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def account_history(
    shop_id: str, customer_id: str, limit: int, before: int | None, as_json: bool
) -> None:
    """Every points change of CUSTOMER_ID in SHOP_ID, newest first, with the command behind it."""
    with database.unit_of_work() as uow:
        account_id = uow.accounts.account_id(shop_id, customer_id)
        if account_id is None:
            raise click.ClickException(f"no customer {customer_id!r} in shop {shop_id!r}")
        page = uow.ledger.page(account_id, before=before, limit=limit)
        tier_changes = uow.tiers.changes_by_transaction(
            account_id, [entry.transaction_id for entry in page.entries]
        )
    entries = [
        _ledger_entry_view(entry, tier_changes.get(entry.transaction_id, []))
        for entry in page.entries
    ]
    if as_json:
        view = {
            "shop_id": shop_id,
            "customer_id": customer_id,
            "entries": entries,
            "next_before": page.next_before,
        }
        click.echo(json.dumps(view, indent=2))
        return
    _echo_history(shop_id, customer_id, entries, before, limit, page.next_before)


def _echo_history(
    shop_id: str,
    customer_id: str,
    entries: list[dict[str, Any]],
    before: int | None,
    limit: int,
    next_before: int | None,
) -> None:
    """The page as text, ending with the command that prints the next one."""
    if not entries:
        older = " older than entry " + str(before) if before is not None else ""
        click.echo(f"no ledger entries{older} for customer {customer_id} in shop {shop_id}")
        return
    click.echo(f"ledger of customer {customer_id} in shop {shop_id}, newest first:")
    for entry in entries:
        _echo_ledger_entry(entry)
    if next_before is not None:
        next_page = shlex.join(
            [
                *("loyalty", "account", "history", shop_id, customer_id),
                *("--limit", str(limit), "--before", str(next_before)),
            ]
        )
        click.echo(f"more entries: {next_page}")


def _ledger_entry_view(entry: Any, tier_changes: list[Any]) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": timestamp(entry.created_at),
        "transaction_id": str(entry.transaction_id),
        "kind": entry.kind,
        "reverses_transaction_id": _optional_id(entry.reverses_transaction_id),
        "command_id": entry.command_id,
        "requested": entry.requested,
        "applied": entry.applied,
        "balance_before": entry.balance_before,
        "balance_after": entry.balance_after,
        "lifetime_before": entry.lifetime_before,
        "lifetime_after": entry.lifetime_after,
        "note": entry.note,
        "source": entry.source,
        "actor": entry.actor,
        "tier_changes": [
            {"from": change.from_tier, "to": change.to_tier, "at": timestamp(change.created_at)}
            for change in tier_changes
        ],
    }


def _optional_id(transaction_id: Any) -> str | None:
    return None if transaction_id is None else str(transaction_id)


def _echo_ledger_entry(entry: dict[str, Any]) -> None:
    click.echo(
        f"#{entry['id']}  {entry['at']}  {entry['kind']}"
        f"  {entry['applied']:+d} (asked {entry['requested']:+d})"
        f"  balance {entry['balance_before']} -> {entry['balance_after']}"
        f"  lifetime {entry['lifetime_before']} -> {entry['lifetime_after']}"
    )
    click.echo(
        f"    transaction {entry['transaction_id']}  command {entry['command_id']}"
        f"  source {entry['source'] or '-'}  actor {entry['actor'] or '-'}"
    )
    if entry["reverses_transaction_id"]:
        click.echo(f"    reverses transaction {entry['reverses_transaction_id']}")
    if entry["note"]:
        click.echo(f"    note: {entry['note']}")
    for change in entry["tier_changes"]:
        click.echo(f"    tier: {change['from'] or 'none'} -> {change['to'] or 'none'}")


@click.group("commands")
def commands() -> None:
    """What became of the commands sent to the worker."""


@commands.command("show")
@click.argument("shop_id")
@click.argument("command_id")
@click.option("--json", "as_json", is_flag=True, help="Print the stored JSON.")
def commands_show(shop_id: str, command_id: str, as_json: bool) -> None:
    """The stored result of COMMAND_ID in SHOP_ID, and any attempts refused without claiming the
    id (invalid input, the id reused for a different command), newest first."""
    with database.unit_of_work() as uow:
        stored = uow.command_log.processed_command(shop_id, command_id)
        refused = uow.command_log.rejected_messages(shop_id, command_id, REFUSED_ATTEMPTS_SHOWN + 1)
    if stored is None and not refused:
        raise click.ClickException(f"no command {command_id!r} in shop {shop_id!r}")
    stored_view = None if stored is None else _stored_view(stored)
    attempts = [_refused_attempt_view(attempt) for attempt in refused[:REFUSED_ATTEMPTS_SHOWN]]
    older_attempts_omitted = len(refused) > REFUSED_ATTEMPTS_SHOWN
    if as_json:
        view = {
            "shop_id": shop_id,
            "command_id": command_id,
            "stored": stored_view,
            "refused_attempts": attempts,
            "older_refused_attempts_omitted": older_attempts_omitted,
        }
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(f"command {command_id} in shop {shop_id}")
    if stored_view is None:
        click.echo("  never stored: no attempt under this id was valid")
    else:
        _echo_stored(stored_view)
    _echo_refused_attempts(attempts, older_attempts_omitted)


def _stored_view(stored: Any) -> dict[str, Any]:
    return {
        "command_type": stored.command_type,
        "status": stored.status,
        "at": timestamp(stored.created_at),
        "result": mask(stored.result),
    }


def _refused_attempt_view(attempt: Any) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "command_type": attempt.command_type,
        "code": attempt.code,
        "at": timestamp(attempt.created_at),
        "result": mask(attempt.result),
        # A cut payload is no longer JSON: its text is shown, masked.
        "payload": mask(
            attempt.payload if attempt.payload_truncated else json.loads(attempt.payload)
        ),
        "payload_truncated": attempt.payload_truncated,
    }


def _echo_refused_attempts(attempts: list[dict[str, Any]], older_attempts_omitted: bool) -> None:
    if attempts:
        click.echo("refused attempts under this id, newest first (they did not claim it):")
    for attempt in attempts:
        error = attempt["result"]["error"]
        click.echo(f"  #{attempt['id']}  {attempt['at']}  {attempt['command_type']}")
        click.echo(f"    {error['code']} ({error['http_status']}): {error['message']}")
        click.echo(f"    payload {json.dumps(attempt['payload'])}")
    if older_attempts_omitted:
        click.echo(f"  (only the newest {REFUSED_ATTEMPTS_SHOWN} attempts are shown)")


def _echo_stored(stored: dict[str, Any]) -> None:
    result = stored["result"]
    click.echo(f"  {stored['command_type']} {stored['status']} at {stored['at']}")
    if "error" in result:
        error = result["error"]
        click.echo(f"  {error['code']} ({error['http_status']}): {error['message']}")
    elif "data" in result:
        attributes = result["data"]["attributes"]
        click.echo(
            f"  transaction {result['transaction_id']}: customer {attributes['customer_id']}"
            f"  {attributes['applied_adjustment']:+d} (asked {attributes['adjustment']:+d})"
            f"  balance {attributes['points_before']} -> {attributes['points_after']}"
        )
    click.echo("  stored result:")
    click.echo("    " + json.dumps(result, indent=2).replace("\n", "\n    "))
