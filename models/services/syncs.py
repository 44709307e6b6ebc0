"""What the three provider syncs share: push the account's current state (absolute values)
unless that exact state is already there, send the event of the points change (or of the expiry
reminder) keyed by its id, and remember what was pushed.

The sync state row is locked while a provider is called, so pushes for one account and provider
happen one at a time and an older state can never overwrite a newer one.
"""

from __future__ import annotations

from typing import Any, Protocol

from models.domain.clock import utc_now
from models.domain.side_effects import profile_push_needed, state_fingerprint
from models.persistence.outbox import OutboxRow
from models.persistence.unit_of_work import UnitOfWork
from models.services.side_effects import UnitsOfWork


class PushedState(Protocol):
    """The account as the provider should see it: a dataclass, fingerprinted field by field."""

    @property
    def revision(self) -> int: ...
    @property
    def tier(self) -> str | None: ...


class Provider(Protocol):
    """One provider's client with its key box and rate limit, as the task wires it
    (``workers.outbound``). Its faults are raised as ``TryAgain`` or ``GiveUp``."""

    @property
    def name(self) -> str: ...

    def api_key(self, encrypted_api_key: str) -> str:
        """The decrypted key; ``GiveUp`` when no configured secret opens it."""
        ...

    def customer_state(self, account: Any) -> PushedState:
        """The provider's view of ``AccountStore.with_shop``'s row."""
        ...

    def points_event(self, entry: Any, tier: str | None) -> object:
        """The provider's event for a ledger entry."""
        ...

    def expiring_event(self, reminder: Any, state: Any) -> object:
        """The provider's "expiring soon" event for an expiry reminder."""
        ...

    def push(
        self,
        api_key: str,
        state: PushedState,
        *,
        push_profile: bool,
        event: object | None,
        shop_id: str,
    ) -> str:
        """The provider's outcome ("synced", or why it skipped)."""
        ...


def sync_account(unit_of_work: UnitsOfWork, outbox_id: int, provider: Provider) -> str:
    with unit_of_work() as uow:
        row = uow.outbox.lock_pending(outbox_id)
        if row is None or row.account_id is None:
            return "already done"
        outcome = _sync(uow, provider, row)
        uow.outbox.complete(outbox_id, outcome, utc_now())
        uow.commit()
        return outcome


def _sync(uow: UnitOfWork, provider: Provider, row: OutboxRow) -> str:
    assert row.account_id is not None
    integration = uow.integrations.get(row.shop_id, provider.name)
    if integration is None or not integration.enabled:
        return f"skipped: {provider.name} is not enabled for the shop"
    api_key = provider.api_key(integration.encrypted_api_key)

    synced = uow.integrations.lock_sync_state(row.account_id, provider.name)
    state = provider.customer_state(uow.accounts.with_shop(row.account_id))
    fingerprint = state_fingerprint(state)
    push_profile = profile_push_needed(
        owed_revision=row.revision,
        current_revision=state.revision,
        synced_revision=synced.synced_revision,
        synced_fingerprint=synced.synced_fingerprint,
        current_fingerprint=fingerprint,
    )
    event = _points_event(uow, provider, row, state)
    if not push_profile and event is None:
        return "skipped: profile current or owed to a newer sync"

    outcome = provider.push(
        api_key, state, push_profile=push_profile, event=event, shop_id=row.shop_id
    )
    if push_profile and outcome == "synced":
        uow.integrations.save_sync_state(
            row.account_id, provider.name, state.revision, fingerprint, utc_now()
        )
    elif outcome == "synced":
        outcome = "synced (event only)"
    return outcome


def _points_event(
    uow: UnitOfWork, provider: Provider, row: OutboxRow, state: PushedState
) -> object | None:
    """The points change behind this sync, if it moved any points, or the reminder behind it (a
    tier change or a profile change has neither)."""
    if row.transaction_id is None:
        return None
    entry = uow.ledger.entry(row.transaction_id)
    if entry is not None:
        return provider.points_event(entry, state.tier) if entry.applied else None
    reminder = uow.lots.reminder(row.transaction_id)
    return None if reminder is None else provider.expiring_event(reminder, state)
