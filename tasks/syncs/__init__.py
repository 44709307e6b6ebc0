"""What the three provider syncs share: push the account's current state (absolute values)
unless that exact state is already there, send the adjustment's event keyed by its transaction id,
and remember what was pushed.

The sync state row is locked while a provider is called, so pushes for one account and provider
happen one at a time and an older state can never overwrite a newer one.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from models.domain.clock import utc_now
from models.domain.names import sync_queue, sync_task_name
from models.domain.side_effects import profile_push_needed, state_fingerprint
from models.persistence.side_effect_store import OutboxRow
from models.persistence.unit_of_work import UnitOfWork
from tasks.side_effects import GiveUp, TryAgain, perform, side_effect_options
from workers.app import app
from workers.db import database
from workers.outbound.providers import get_provider
from workers.outbound.providers.base import (
    CustomerState,
    PermanentProviderError,
    PointsEvent,
    RateLimited,
    TransientProviderError,
)
from workers.outbound.rate_limits import rate_limiter
from workers.outbound.secrets import SecretBox, SecretKeyError


def sync_account(provider_name: str, outbox_id: int) -> str:
    with database.unit_of_work() as uow:
        row = uow.side_effects.lock_pending(outbox_id)
        if row is None or row.account_id is None:
            return "already done"
        outcome = _sync(uow, provider_name, row)
        uow.side_effects.complete(outbox_id, outcome, utc_now())
        uow.commit()
        return outcome


def _sync(uow: UnitOfWork, provider_name: str, row: OutboxRow) -> str:
    assert row.account_id is not None
    integration = uow.side_effects.integration(row.shop_id, provider_name)
    if integration is None or not integration.enabled:
        return f"skipped: {provider_name} is not enabled for the shop"
    try:
        api_key = SecretBox.from_environment().decrypt(integration.encrypted_api_key)
    except SecretKeyError as error:
        raise GiveUp(str(error)) from None

    synced = uow.side_effects.lock_sync_state(row.account_id, provider_name)
    state = _customer_state(uow, row.account_id)
    fingerprint = state_fingerprint(state)
    push_profile = profile_push_needed(
        owed_revision=row.revision,
        current_revision=state.revision,
        synced_revision=synced.synced_revision,
        synced_fingerprint=synced.synced_fingerprint,
        current_fingerprint=fingerprint,
    )
    event = _points_event(uow, row, state)
    if not push_profile and event is None:
        return "skipped: profile current or owed to a newer sync"

    try:
        outcome = get_provider(provider_name).sync(
            api_key,
            state,
            push_profile=push_profile,
            event=event,
            throttle=rate_limiter().throttle_for(provider_name, row.shop_id),
        )
    except RateLimited as wait:
        raise TryAgain(str(wait), retry_after=wait.retry_after, counts=False) from None
    except TransientProviderError as fault:
        raise TryAgain(str(fault), retry_after=fault.retry_after) from None
    except PermanentProviderError as fault:
        raise GiveUp(str(fault)) from None
    if push_profile and outcome == "synced":
        uow.side_effects.save_sync_state(
            row.account_id, provider_name, state.revision, fingerprint, utc_now()
        )
    elif outcome == "synced":
        outcome = "synced (event only)"
    return outcome


def _customer_state(uow: UnitOfWork, account_id: int) -> CustomerState:
    account: Any = uow.side_effects.account_state(account_id)
    return CustomerState(
        shop_id=account.shop_id,
        customer_id=account.customer_id,
        email=account.email,
        phone=account.phone,
        first_name=account.first_name,
        last_name=account.last_name,
        balance=account.balance,
        lifetime_points=account.lifetime,
        tier=account.tier_name,
        revision=account.revision,
        last_activity_at=account.last_activity_at,
    )


def _points_event(uow: UnitOfWork, row: OutboxRow, state: CustomerState) -> PointsEvent | None:
    """The adjustment behind this sync, if it moved any points (a tier change has none)."""
    if row.transaction_id is None:
        return None
    entry = uow.side_effects.ledger_entry(row.transaction_id)
    if entry is None or entry.applied == 0:
        return None
    return PointsEvent(
        transaction_id=str(entry.transaction_id),
        points=entry.applied,
        balance_after=entry.balance_after,
        lifetime_after=entry.lifetime_after,
        tier=state.tier,
        note=entry.note,
        occurred_at=entry.created_at,
    )


def sync_task(provider_name: str) -> Any:
    """The Celery task for one provider: its own name, queue and retry policy."""

    def run(self: Task[Any, Any], outbox_id: int) -> str:
        return perform(outbox_id, lambda row_id: sync_account(provider_name, row_id))

    run.__name__ = run.__qualname__ = f"sync_{provider_name}"
    register = app.task(
        name=sync_task_name(provider_name), **side_effect_options(sync_queue(provider_name))
    )
    return register(run)  # type: ignore[no-untyped-call]
