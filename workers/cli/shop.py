"""``loyalty shop``: creating a shop and changing its name, sender and expiry policy."""

from __future__ import annotations

import click

from models.services.expiry import set_policy
from workers.cli.admin import sender_address
from workers.db import database


@click.group()
def shop() -> None:
    """Shops (tenants)."""


_email_from_option = click.option(
    "--email-from",
    callback=lambda _ctx, _param, value: sender_address(value),
    help="Sender of the shop's emails, e.g. 'Shop <hi@shop.com>' (else LOYALTY_EMAIL_FROM).",
)


@shop.command("create")
@click.argument("shop_id")
@click.option("--name", help="Display name, e.g. for emails.")
@_email_from_option
def shop_create(shop_id: str, name: str | None, email_from: str | None) -> None:
    """Create the shop SHOP_ID; customers and adjustments are scoped by it."""
    with database.unit_of_work() as uow:
        created = uow.shops.create(shop_id, name, email_from)
        uow.commit()
    click.echo(f"shop {shop_id} {'created' if created else 'already exists'}")


@shop.command("update")
@click.argument("shop_id")
@click.option("--name", help="Display name, e.g. for emails.")
@_email_from_option
@click.option(
    "--points-expire-after-days",
    type=click.IntRange(0, 36_500),
    help="Points expire this many days after they were applied; 0: never.",
)
@click.option(
    "--expiry-reminder-days",
    type=click.IntRange(0, 365),
    help="Remind customers this many days before their points expire; 0: no reminder.",
)
def shop_update(
    shop_id: str,
    name: str | None,
    email_from: str | None,
    points_expire_after_days: int | None,
    expiry_reminder_days: int | None,
) -> None:
    """Change the shop's name, email sender or expiry policy. Turning expiry on makes each
    customer's balance one lot that expires that many days from now."""
    changes = {"name": name, "email_from": email_from}
    with database.unit_of_work() as uow:
        found = set_policy(
            uow,
            shop_id,
            expire_after_days=points_expire_after_days,
            reminder_days=expiry_reminder_days,
        ) and uow.shops.update(
            shop_id, {key: value for key, value in changes.items() if value is not None}
        )
        if not found:
            raise click.ClickException(f"shop {shop_id!r} not found")
        shown = uow.shops.get(shop_id)
        uow.commit()
    expiry = (
        f"points expire after {shown.points_expire_after_days} days, reminder "
        f"{shown.expiry_reminder_days} days before"
        if shown.points_expire_after_days
        else "points never expire"
    )
    click.echo(f"shop {shop_id}: name {shown.name!r}, emails from {shown.email_from!r}, {expiry}")
