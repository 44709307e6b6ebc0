"""Operator commands for the fan-out: tiers, provider integrations and dead letters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.utils import parseaddr
from typing import Any

import click

from models.domain.clock import utc_now
from models.domain.names import RECALCULATE_SHOP_TIERS
from models.persistence.unit_of_work import UnitOfWork
from workers.db import database
from workers.outbound.providers import PROVIDERS
from workers.outbound.secrets import SecretBox, SecretKeyError, key_hint
from workers.settings import settings


def sender_address(value: str | None) -> str | None:
    """``--email-from``: an address, optionally with a display name."""
    if value is None:
        return None
    _, address = parseaddr(value)
    if "@" not in address or len(value) > 320:
        raise click.BadParameter(f"{value!r} is not an email address (e.g. 'Shop <hi@shop.com>')")
    return value


def _require_shop(uow: UnitOfWork, shop_id: str) -> None:
    if not uow.shops.exists(shop_id):
        raise click.ClickException(f"shop {shop_id!r} not found")


def _rows_of_shop(
    shop_id: str, what: str, read: Callable[[UnitOfWork], Sequence[Any]]
) -> Sequence[Any]:
    """What a list command shows of an existing shop; says so when there is nothing."""
    with database.unit_of_work() as uow:
        _require_shop(uow, shop_id)
        rows = read(uow)
    if not rows:
        click.echo(f"shop {shop_id} has no {what}")
    return rows


@click.group()
def tier() -> None:
    """VIP tiers: an account holds the highest tier its lifetime points reach."""


def _recalculate_shop_afterwards(uow: UnitOfWork, shop_id: str) -> None:
    uow.owe(
        uow.outbox.owe(
            [RECALCULATE_SHOP_TIERS],
            shop_id=shop_id,
            account_id=None,
            transaction_id=None,
            revision=None,
            now=utc_now(),
        )
    )


@tier.command("set")
@click.argument("shop_id")
@click.argument("name")
@click.argument("threshold", type=click.IntRange(min=0))
def tier_set(shop_id: str, name: str, threshold: int) -> None:
    """Create the tier NAME, or move it, at THRESHOLD lifetime points; every account of the
    shop is then recalculated (by a worker on loyalty.tiers)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise click.BadParameter("must be 1 to 100 characters", param_hint="NAME")
    uow = database.unit_of_work()
    with uow:
        _require_shop(uow, shop_id)
        created = uow.tiers.set(shop_id, name, threshold)
        _recalculate_shop_afterwards(uow, shop_id)
        uow.commit()
    click.echo(f"tier {name!r} {'created' if created else 'moved'} at {threshold} lifetime points")


@tier.command("delete")
@click.argument("shop_id")
@click.argument("name")
def tier_delete(shop_id: str, name: str) -> None:
    """Delete the tier NAME; its members are recalculated."""
    uow = database.unit_of_work()
    with uow:
        _require_shop(uow, shop_id)
        if not uow.tiers.delete(shop_id, name):
            raise click.ClickException(f"no tier {name!r} in shop {shop_id!r}")
        _recalculate_shop_afterwards(uow, shop_id)
        uow.commit()
    click.echo(f"tier {name!r} deleted")


@tier.command("list")
@click.argument("shop_id")
def tier_list(shop_id: str) -> None:
    """The shop's tiers, lowest first, with how many accounts hold each."""
    for row in _rows_of_shop(shop_id, "tiers", lambda uow: uow.tiers.with_members(shop_id)):
        click.echo(
            f"{row.name:<24} from {row.threshold:>10} lifetime points, {row.members} members"
        )


@click.group()
def integration() -> None:
    """Marketing providers a shop syncs to (Klaviyo, Omnisend, Postscript)."""


provider_choice = click.Choice(PROVIDERS)


@integration.command("enable")
@click.argument("shop_id")
@click.argument("provider", type=provider_choice)
@click.option(
    "--api-key",
    required=True,
    envvar="LOYALTY_PROVIDER_API_KEY",
    help="The provider's private API key (stored encrypted; or from LOYALTY_PROVIDER_API_KEY).",
)
def integration_enable(shop_id: str, provider: str, api_key: str) -> None:
    """Sync SHOP_ID's accounts to PROVIDER from now on."""
    api_key = api_key.strip()
    if not api_key:
        raise click.BadParameter("must not be empty", param_hint="--api-key")
    try:
        encrypted = SecretBox(settings().secret_keys).encrypt(api_key)
    except SecretKeyError as error:
        raise click.ClickException(str(error)) from None
    with database.unit_of_work() as uow:
        _require_shop(uow, shop_id)
        uow.integrations.enable(shop_id, provider, encrypted, key_hint(api_key), utc_now())
        uow.commit()
    click.echo(f"{provider} enabled for shop {shop_id} (key {key_hint(api_key)})")


@integration.command("disable")
@click.argument("shop_id")
@click.argument("provider", type=provider_choice)
def integration_disable(shop_id: str, provider: str) -> None:
    """Stop syncing SHOP_ID to PROVIDER (its key is kept; enable again to resume)."""
    with database.unit_of_work() as uow:
        _require_shop(uow, shop_id)
        if not uow.integrations.disable(shop_id, provider, utc_now()):
            raise click.ClickException(f"{provider} was never enabled for shop {shop_id!r}")
        uow.commit()
    click.echo(f"{provider} disabled for shop {shop_id}")


@integration.command("list")
@click.argument("shop_id")
def integration_list(shop_id: str) -> None:
    """The shop's integrations, keys masked."""
    rows = _rows_of_shop(shop_id, "integrations", lambda uow: uow.integrations.for_shop(shop_id))
    for row in rows:
        state = "enabled" if row.enabled else "disabled"
        click.echo(f"{row.provider:<11} {state:<9} key {row.key_hint}")


@click.group("dead-letters")
def dead_letters() -> None:
    """Side effects that failed for good, to read and replay."""


@dead_letters.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed ones.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def dead_letters_list(include_replayed: bool, limit: int) -> None:
    """Dead letters, oldest first."""
    with database.unit_of_work() as uow:
        rows = uow.outbox.list_dead_letters(include_replayed=include_replayed, limit=limit)
    if not rows:
        click.echo("no dead letters")
    for row in rows:
        replayed = f"  replayed {row.replayed_at:%Y-%m-%d %H:%M}" if row.replayed_at else ""
        click.echo(
            f"#{row.id}  {row.created_at:%Y-%m-%d %H:%M:%S}  {row.task_name}  shop {row.shop_id}"
            f"  customer {row.customer_id or '-'}  after {row.attempts} attempts{replayed}\n"
            f"    {row.error}"
        )


@dead_letters.command("replay")
@click.argument("dead_letter_ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every unreplayed dead letter.")
def dead_letters_replay(dead_letter_ids: tuple[int, ...], replay_all: bool) -> None:
    """Run the side effects of DEAD_LETTER_IDS (or --all) again, from their first attempt."""
    if bool(dead_letter_ids) == replay_all:
        raise click.UsageError("give dead letter ids or --all (not both)")
    uow = database.unit_of_work()
    with uow:
        reopened = uow.outbox.replay_dead_letters(
            None if replay_all else list(dead_letter_ids), utc_now()
        )
        uow.owe(reopened)
        uow.commit()
    click.echo(f"replaying {len(reopened)} dead letters")
