"""The ``loyalty`` command line: schema, shops, publishing commands and reading accounts."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import click
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult

from workers.cli.account import account
from workers.cli.admin import dead_letters, integration, tier
from workers.cli.expiry import expiry
from workers.cli.migrate import migrate
from workers.cli.shop import shop
from workers.cli.support import commands
from workers.client.publisher import (
    publish_adjustment,
    publish_customer_upsert,
    publish_reversal,
)
from workers.db import database

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Loyalty points worker: apply and inspect points adjustments."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations up to REVISION (default: the newest)."""
    database.upgrade(revision)
    click.echo(f"database at {revision}")


def _with_options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


_publishing_options = _with_options(
    click.option("--command-id", help="Idempotency key; a new UUID when omitted."),
    click.option("--wait", is_flag=True, help="Wait for the result and print it."),
    click.option(
        "--timeout", type=float, default=30.0, show_default=True, help="Seconds to --wait."
    ),
)
"""What every command the CLI publishes takes."""

_points_change_options = _with_options(
    click.option("--note", help="Stored on the audit entry (1..500 characters)."),
    click.option(
        "--on-insufficient-points",
        type=click.Choice(["floor", "reject"]),
        default="floor",
        show_default=True,
        help="A deduction below zero: floor the balance at 0, or refuse.",
    ),
    click.option("--actor", help="Who asked for it, for the audit entry."),
)
"""What every points change takes, for its audit entry and its floor."""


@main.command()
@click.argument("shop_id")
@click.argument("customer_id")
@click.option("--adjustment", type=int, help="Points to add (positive) or deduct (negative).")
@click.option("--balance", type=int, help="Set the balance to this value (wins over --adjustment).")
@click.option(
    "--expected-revision", type=int, help="Refuse unless the account is at this revision."
)
@click.option("--lifetime/--no-lifetime", default=True, help="Also move lifetime points.")
@click.option("--email/--no-email", default=True, help="Send the points-earned email.")
@_points_change_options
@_publishing_options
def adjust(
    shop_id: str,
    customer_id: str,
    adjustment: int | None,
    balance: int | None,
    note: str | None,
    command_id: str | None,
    expected_revision: int | None,
    on_insufficient_points: str,
    lifetime: bool,
    email: bool,
    actor: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Publish an adjustment for CUSTOMER_ID of SHOP_ID (the worker applies it)."""
    if adjustment is None and balance is None:
        raise click.UsageError("give --adjustment N or --balance N")
    command: dict[str, Any] = {
        "command_id": command_id or str(uuid.uuid4()),
        "shop_id": shop_id,
        "customer_id": customer_id,
        "adjustment": adjustment,
        "balance": balance,
        "note": note,
        "expected_revision": expected_revision,
        "on_insufficient_points": on_insufficient_points,
        "update_lifetime_points": lifetime,
        "send_email": email,
        "source": "cli",
        "actor": actor,
    }
    _publish_and_report(publish_adjustment, command, wait, timeout)


@main.command()
@click.argument("shop_id")
@click.argument("customer_id")
@click.argument("transaction_id")
@click.option(
    "--points",
    type=click.IntRange(min=1),
    help="Points to reverse; everything still reversible when omitted.",
)
@_points_change_options
@_publishing_options
def reverse(
    shop_id: str,
    customer_id: str,
    transaction_id: str,
    points: int | None,
    note: str | None,
    command_id: str | None,
    on_insufficient_points: str,
    actor: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Publish the reversal of TRANSACTION_ID, an applied adjustment of CUSTOMER_ID in SHOP_ID:
    an increase is clawed back, a deduction credited back."""
    command: dict[str, Any] = {
        "command_id": command_id or str(uuid.uuid4()),
        "shop_id": shop_id,
        "customer_id": customer_id,
        "transaction_id": transaction_id,
        "points": points,
        "note": note,
        "on_insufficient_points": on_insufficient_points,
        "source": "cli",
        "actor": actor,
    }
    _publish_and_report(publish_reversal, command, wait, timeout)


@main.group()
def customer() -> None:
    """Customers of a shop."""


@customer.command("upsert")
@click.argument("shop_id")
@click.argument("customer_id")
@click.option("--email")
@click.option("--phone")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--excluded/--included", default=None, help="Exclude from or include in the program.")
@_publishing_options
def customer_upsert(
    shop_id: str,
    customer_id: str,
    email: str | None,
    phone: str | None,
    first_name: str | None,
    last_name: str | None,
    excluded: bool | None,
    command_id: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Publish a create-or-update of CUSTOMER_ID in SHOP_ID."""
    command = {
        "command_id": command_id or str(uuid.uuid4()),
        "shop_id": shop_id,
        "customer_id": customer_id,
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "excluded": excluded,
    }
    _publish_and_report(publish_customer_upsert, command, wait, timeout)


def _publish_and_report(
    publish: Callable[[dict[str, Any]], AsyncResult[Any]],
    command: dict[str, Any],
    wait: bool,
    timeout: float,
) -> None:
    """Options left out are left out of the command, so the contract's defaults apply. A command
    the publisher finds invalid is not sent: the error names each field, exit status 1."""
    from models.domain.commands import InvalidCommand
    from workers.client.publisher import PublishError

    command = {key: value for key, value in command.items() if value is not None}
    try:
        pending = publish(command)
    except InvalidCommand as invalid:
        raise click.ClickException(f"invalid command, nothing was sent: {invalid}") from None
    except PublishError as failure:
        raise click.ClickException(str(failure)) from None
    if not wait:
        click.echo(f"published command {command['command_id']} (task {pending.id})")
        return
    try:
        result = pending.get(timeout=timeout)
    except ResultTimeout:
        click.echo(
            f"no result for command {command['command_id']} within {timeout:g}s; "
            "is a worker consuming loyalty.adjustments?",
            err=True,
        )
        sys.exit(2)
    click.echo(json.dumps(result, indent=2))
    if result.get("status") != "applied":
        sys.exit(1)


main.add_command(commands)


@main.command()
@click.option("--timeout", type=float, default=60.0, show_default=True)
def demo(timeout: float) -> None:
    """Run a worker and a tour of adjustments on the configured (default: embedded) setup."""
    from workers.cli.demo import run_demo

    sys.exit(run_demo(timeout))


for group in (shop, account, tier, integration, dead_letters, migrate, expiry):
    main.add_command(group)

if __name__ == "__main__":
    main()
