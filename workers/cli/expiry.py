"""``loyalty expiry run``: the expiry run, here and now, for operators (and tests: ``--as-of``
is the clock it runs at)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from models.services.expiry import run_expiry
from workers.db import database


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 moment; one without an offset is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 moment, e.g. 2027-01-31T00:00:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.group()
def expiry() -> None:
    """Points expiry (a shop's policy: loyalty shop update --points-expire-after-days)."""


@expiry.command("run")
@click.argument("shop_id", required=False)
@click.option(
    "--as-of",
    metavar="ISO-8601",
    callback=_moment,
    help="Expire what has expired by then (default: now).",
)
def expiry_run(shop_id: str | None, as_of: datetime | None) -> None:
    """Expire the lots due in every shop with a policy (or SHOP_ID alone) and record the
    reminders due; the side effects follow through the outbox, as for any points change."""
    report = run_expiry(database.unit_of_work, as_of=as_of, shop_id=shop_id)
    scope = f"shop {shop_id}" if shop_id else "every shop with a policy"
    click.echo(
        f"as of {report.as_of.isoformat()}, {scope}: {_count(report.points, 'point')} expired "
        f"from {_count(report.accounts, 'account')}; "
        f"{_count(report.reminders, 'reminder')} recorded"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"
