"""Tier recalculation: after an adjustment changed lifetime points, and for a whole shop after its
tiers were edited. The account is locked while its tier is chosen, every change is recorded with
its cause, and a change owes a sync to each provider the shop has enabled."""

from __future__ import annotations

import time
import uuid

from models.domain.clock import utc_now
from models.domain.names import sync_task_name
from models.domain.tiers import choose_tier
from models.persistence.accounts import AccountForTier
from models.persistence.unit_of_work import UnitOfWork

SHOP_BATCH = 500

ADJUSTMENT_CAUSE = "adjustment"
TIERS_CHANGED_CAUSE = "tiers_changed"


def recalculate_account(uow: UnitOfWork, outbox_id: int) -> str:
    """The tier of the account whose adjustment owed this outbox row."""
    with uow:
        row = uow.outbox.lock_pending(outbox_id)
        if row is None or row.account_id is None:
            return "already done"
        account = uow.accounts.lock_for_tier(row.shop_id, account_id=row.account_id)
        changed = _apply_tiers(
            uow, row.shop_id, account, cause=ADJUSTMENT_CAUSE, transaction_id=row.transaction_id
        )
        outcome = "tier changed" if changed else "tier unchanged"
        uow.outbox.complete(outbox_id, outcome, utc_now())
        uow.commit()
    return outcome


def recalculate_shop(uow: UnitOfWork, outbox_id: int, *, budget: float) -> str:
    """In batches, each its own transaction, so a big shop never holds every account's lock.
    A run stops after ``budget`` seconds (a share of the task time limit) and leaves the rest,
    from the last account it finished, to a next run the relay publishes at once: no shop is too
    big to finish."""
    with uow:
        row = uow.outbox.lock_pending(outbox_id)
        if row is None:
            return "already done"
        shop_id, after_id = row.shop_id, row.resume_after or 0
    deadline = time.monotonic() + budget
    changed = 0
    while True:
        with uow:
            batch = uow.accounts.lock_for_tier(shop_id, after_id=after_id, limit=SHOP_BATCH)
            if batch:
                changed += _apply_tiers(
                    uow, shop_id, batch, cause=TIERS_CHANGED_CAUSE, transaction_id=None
                )
                after_id = batch[-1].id
                if time.monotonic() > deadline:
                    uow.outbox.postpone(outbox_id, utc_now(), resume_after=after_id)
            else:
                uow.outbox.complete(outbox_id, f"{changed} tiers changed", utc_now())
            uow.commit()
        if not batch:
            return f"{changed} tiers changed"
        if time.monotonic() > deadline:
            return f"{changed} tiers changed; continuing after account {after_id}"


def _apply_tiers(
    uow: UnitOfWork,
    shop_id: str,
    locked_accounts: list[AccountForTier],
    *,
    cause: str,
    transaction_id: uuid.UUID | None,
) -> int:
    tiers = uow.tiers.definitions(shop_id)
    providers = uow.integrations.enabled_providers(shop_id)
    now = utc_now()
    changed = 0
    for account in locked_accounts:
        tier = choose_tier(tiers, account.lifetime)
        if (None if tier is None else tier.id) == account.tier_id:
            continue
        uow.tiers.change(
            account, tier, shop_id=shop_id, cause=cause, transaction_id=transaction_id, now=now
        )
        uow.owe(
            uow.outbox.owe(
                [sync_task_name(provider) for provider in providers],
                shop_id=shop_id,
                account_id=account.id,
                transaction_id=None,
                revision=account.revision,
                now=now,
            )
        )
        changed += 1
    return changed
