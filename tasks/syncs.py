"""The provider sync tasks (``models.services.syncs``): each provider's client, the shared rate
limit and the API key box are wired here, and the client's faults translated into the service's
retry or give-up."""

from __future__ import annotations

from typing import Any

from celery import Task

from models.domain.names import sync_task_name
from models.domain.reversals import EntryKind
from models.services import syncs
from models.services.side_effects import GiveUp, TryAgain
from tasks.side_effects import perform, side_effect_task
from workers.db import database
from workers.outbound.providers import PROVIDERS, get_provider
from workers.outbound.providers.base import (
    POINTS_ADJUSTED,
    POINTS_EXPIRED,
    POINTS_EXPIRING_SOON,
    CustomerState,
    PermanentProviderError,
    PointsEvent,
    RateLimited,
    TransientProviderError,
)
from workers.outbound.rate_limits import rate_limiter
from workers.outbound.secrets import SecretBox, SecretKeyError
from workers.settings import settings


class ProviderClient:
    """One provider as the sync service sees it (``models.services.syncs.Provider``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def api_key(self, encrypted_api_key: str) -> str:
        try:
            return SecretBox(settings().secret_keys).decrypt(encrypted_api_key)
        except SecretKeyError as error:
            raise GiveUp(str(error)) from None

    def customer_state(self, account: Any) -> CustomerState:
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
            points_expiring=account.next_expiring_points or 0,
            points_expiration_date=account.next_expiration,
        )

    def points_event(self, entry: Any, tier: str | None) -> PointsEvent:
        return PointsEvent(
            transaction_id=str(entry.transaction_id),
            points=entry.applied,
            balance_after=entry.balance_after,
            lifetime_after=entry.lifetime_after,
            tier=tier,
            note=entry.note,
            occurred_at=entry.created_at,
            name=POINTS_EXPIRED if entry.kind == EntryKind.EXPIRE else POINTS_ADJUSTED,
        )

    def expiring_event(self, reminder: Any, state: CustomerState) -> PointsEvent:
        return PointsEvent(
            transaction_id=str(reminder.id),
            points=reminder.points,
            balance_after=state.balance,
            lifetime_after=state.lifetime_points,
            tier=state.tier,
            note=None,
            occurred_at=reminder.created_at,
            name=POINTS_EXPIRING_SOON,
            expires_at=reminder.expires_at,
        )

    def push(
        self, api_key: str, state: Any, *, push_profile: bool, event: Any, shop_id: str
    ) -> str:
        try:
            return get_provider(self.name, settings().providers).sync(
                api_key,
                state,
                push_profile=push_profile,
                event=event,
                throttle=rate_limiter(settings().providers).throttle_for(self.name, shop_id),
            )
        except RateLimited as wait:
            raise TryAgain(str(wait), retry_after=wait.retry_after, counts=False) from None
        except TransientProviderError as fault:
            raise TryAgain(str(fault), retry_after=fault.retry_after) from None
        except PermanentProviderError as fault:
            raise GiveUp(str(fault)) from None


def sync_account(provider_name: str, outbox_id: int) -> str:
    return syncs.sync_account(database.unit_of_work, outbox_id, ProviderClient(provider_name))


def sync_task(provider_name: str) -> Task[Any, Any]:
    """The Celery task for one provider: its own name, queue and retry policy."""

    def run(self: Task[Any, Any], outbox_id: int) -> str:
        return perform(outbox_id, lambda row_id: sync_account(provider_name, row_id))

    run.__name__ = run.__qualname__ = f"sync_{provider_name}"
    return side_effect_task(sync_task_name(provider_name))(run)


SYNC_TASKS = {provider: sync_task(provider) for provider in PROVIDERS}
"""One task per provider of the registry (``loyalty.sync_klaviyo``…): a new provider's client
gets its task, queue and route without a line here."""
