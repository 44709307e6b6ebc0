"""What a batch of commands reads (``BatchState``) and what its plan writes (``BatchPlan``): the
planner's input and output, which the batch store reads and writes in a few statements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.domain.adjustments import Adjustment, Points
from models.domain.expiry import ExpiryPolicy, Lot
from models.domain.names import sync_task_name
from models.domain.parsing import Key
from models.domain.reversals import EntryKind, ReversibleEntry


@dataclass(slots=True)
class WorkingAccount:
    """An account as the batch has left it so far; ``id`` is None until a new one is inserted."""

    id: int | None
    shop_id: str
    customer_id: str
    points: Points
    excluded: bool = False
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tier: tuple[str, int] | None = None
    last_activity_at: datetime | None = None
    lots: list[Lot] | None = None
    """The account's lots when its shop has an expiry policy; None when its points never
    expire."""
    created: bool = False
    changed: bool = False


@dataclass(frozen=True, slots=True)
class BatchState:
    """What the batch's commands find in the database, read under the accounts' locks."""

    shops: set[str]
    shops_with_tiers: set[str]
    providers: dict[str, list[str]]
    accounts: dict[Key, WorkingAccount]
    stored: dict[Key, tuple[str, dict[str, Any]]]
    reversible: dict[uuid.UUID, ReversibleEntry] = field(default_factory=dict)
    """The ledger entries the batch's reversals name, by transaction id."""
    expiry_policies: dict[str, ExpiryPolicy] = field(default_factory=dict)
    """The batch's shops that have one; their accounts come with their lots."""

    def syncs(self, shop_id: str) -> list[str]:
        """The sync tasks of the shop's enabled providers."""
        return [sync_task_name(provider) for provider in self.providers.get(shop_id, [])]


@dataclass(frozen=True, slots=True)
class OwedSideEffect:
    task_name: str
    account: WorkingAccount
    transaction_id: uuid.UUID | None
    revision: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    account: WorkingAccount
    values: dict[str, Any]


def ledger_row(
    account: WorkingAccount,
    transaction_id: uuid.UUID,
    command_id: str,
    change: Adjustment,
    now: datetime,
    *,
    kind: EntryKind,
    note: str | None = None,
    source: str | None = None,
    actor: str | None = None,
    reverses: uuid.UUID | None = None,
) -> LedgerRow:
    """The audit entry of a points change; its account id is known once the batch is written."""
    return LedgerRow(
        account,
        {
            "transaction_id": transaction_id,
            "shop_id": account.shop_id,
            "command_id": command_id,
            "requested": change.requested,
            "applied": change.applied,
            "balance_before": change.before.balance,
            "balance_after": change.after.balance,
            "lifetime_before": change.before.lifetime,
            "lifetime_after": change.after.lifetime,
            "note": note,
            "source": source,
            "actor": actor,
            "created_at": now,
            "kind": kind,
            "reverses_transaction_id": reverses,
        },
    )


@dataclass(frozen=True, slots=True)
class ReminderRow:
    """A "points expiring soon" reminder, recorded once per account and expiry moment."""

    account: WorkingAccount
    id: uuid.UUID
    expires_at: datetime
    points: int


@dataclass(slots=True)
class BatchPlan:
    """Everything the batch writes, and each command's result in order."""

    now: datetime
    results: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[Key, WorkingAccount] = field(default_factory=dict)
    ledger: list[LedgerRow] = field(default_factory=list)
    processed: list[dict[str, Any]] = field(default_factory=list)
    rejected_messages: list[dict[str, Any]] = field(default_factory=list)
    side_effects: list[OwedSideEffect] = field(default_factory=list)
    reminders: list[ReminderRow] = field(default_factory=list)

    def owe(
        self, task_names: list[str], account: WorkingAccount, transaction_id: uuid.UUID | None
    ) -> None:
        """Side effects of the account's state as the batch leaves it."""
        self.side_effects += [
            OwedSideEffect(task_name, account, transaction_id, account.points.revision)
            for task_name in task_names
        ]

    def touched_accounts(self) -> list[WorkingAccount]:
        return [account for account in self.accounts.values() if account.changed]
