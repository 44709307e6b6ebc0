"""``loyalty account``: a customer's account at a glance (``show``) and its whole ledger, page by
page (``history``, from the support commands)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from models.domain.clock import as_utc
from models.domain.results import timestamp
from workers.cli.support import account_history
from workers.db import database


@click.group()
def account() -> None:
    """Customer accounts."""


@account.command("show")
@click.argument("shop_id")
@click.argument("customer_id")
@click.option("--entries", type=int, default=10, show_default=True, help="Ledger entries to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def account_show(shop_id: str, customer_id: str, entries: int, as_json: bool) -> None:
    """Balance, tier, revision and the latest ledger entries of a customer."""
    with database.unit_of_work() as uow:
        row = uow.accounts.summary(shop_id, customer_id)
        if row is None:
            raise click.ClickException(f"no customer {customer_id!r} in shop {shop_id!r}")
        ledger = uow.ledger.recent(row.id, entries)
    view = _account_view(shop_id, customer_id, row, ledger)
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    _echo_account(view)


account.add_command(account_history)


def _account_view(
    shop_id: str, customer_id: str, row: Any, ledger: Sequence[Any]
) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "email": row.email,
        "excluded": row.excluded,
        "balance": row.balance,
        "lifetime_points": row.lifetime,
        "earned": row.earned,
        "redeemed": row.redeemed,
        "adjusted": row.adjusted,
        "expired": row.expired,
        "tier": None
        if row.tier_name is None
        else {"name": row.tier_name, "threshold": row.tier_threshold},
        "revision": row.revision,
        "last_activity_at": row.last_activity_at.isoformat() if row.last_activity_at else None,
        "points_expiration": None
        if row.next_expiration is None
        else {
            "expiration_date": timestamp(as_utc(row.next_expiration)),
            "expiring_points_amount": row.next_expiring_points,
        },
        "ledger": [_ledger_entry_view(entry) for entry in ledger],
    }


def _ledger_entry_view(entry: Any) -> dict[str, Any]:
    return {
        "transaction_id": str(entry.transaction_id),
        "kind": entry.kind,
        "reverses_transaction_id": None
        if entry.reverses_transaction_id is None
        else str(entry.reverses_transaction_id),
        "at": entry.created_at.isoformat(),
        "requested": entry.requested,
        "applied": entry.applied,
        "balance_before": entry.balance_before,
        "balance_after": entry.balance_after,
        "note": entry.note,
        "source": entry.source,
        "command_id": entry.command_id,
    }


def _echo_account(view: dict[str, Any]) -> None:
    tier = view["tier"]
    click.echo(
        f"{view['customer_id']} in {view['shop_id']}" + (" (excluded)" if view["excluded"] else "")
    )
    click.echo(
        f"  balance {view['balance']}  lifetime {view['lifetime_points']}  "
        f"(earned {view['earned']}, redeemed {view['redeemed']}, adjusted {view['adjusted']}, "
        f"expired {view['expired']})"
    )
    expiration = view["points_expiration"]
    if expiration:
        click.echo(
            f"  {expiration['expiring_points_amount']} points expire at "
            f"{expiration['expiration_date']}"
        )
    click.echo(f"  tier {tier['name'] + ' (' + str(tier['threshold']) + ')' if tier else 'none'}")
    last_activity = view["last_activity_at"] or "never"
    click.echo(f"  revision {view['revision']}, last activity {last_activity}")
    if view["ledger"]:
        click.echo(f"  last {len(view['ledger'])} ledger entries, newest first:")
    for entry in view["ledger"]:
        click.echo(
            f"    {entry['at'][:19]}  {entry['kind']}  {entry['applied']:+d} "
            f"(asked {entry['requested']:+d})  "
            f"{entry['balance_before']} -> {entry['balance_after']}  {entry['note'] or ''}"
        )
