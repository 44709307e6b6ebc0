"""What a batch of commands reads (``BatchState``) and what its plan writes (``BatchPlan``): the
planner's input and output, which the batch store reads and writes in a few statements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.domain.adjustments import Points
from models.domain.parsing import Key
from models.domain.reversals import ReversibleEntry


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

    def touched_accounts(self) -> list[WorkingAccount]:
        return [account for account in self.accounts.values() if account.changed]
