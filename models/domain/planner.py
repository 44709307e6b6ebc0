"""The one planner of commands: a batch of them (a worker's micro-batch of live commands, a
migration's chunk, or a single command) planned in memory, purely, in message order.

The batch is read under lock first (its accounts, stored results, shops), then each command is
decided with the rules of ``models.domain.adjustments`` against the state the earlier commands
of the batch left, exactly as it would have been after their commits; the plan is then written
at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.domain import results
from models.domain.adjustments import Adjustment, Points, plan_adjustment
from models.domain.command_log import processed_row, rejected_message_row
from models.domain.commands import (
    ADJUST_POINTS,
    UPSERT_CUSTOMER,
    AdjustPoints,
    UpsertCustomer,
    salvage_key,
)
from models.domain.errors import (
    Rejection,
    customer_not_found,
    unknown_shop,
)
from models.domain.names import sync_task_name
from models.domain.parsing import Key, ParsedItem
from models.domain.side_effects import owed_side_effects


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


@dataclass(frozen=True, slots=True)
class OwedSideEffect:
    task_name: str
    account: WorkingAccount
    transaction_id: uuid.UUID
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


def plan_batch(
    items: list[ParsedItem],
    state: BatchState,
    now: datetime,
    new_transaction_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> BatchPlan:
    planner = _Planner(state, now, new_transaction_id)
    for item in items:
        planner.plan.results.append(planner.apply(item))
    return planner.plan


class _Planner:
    def __init__(
        self, state: BatchState, now: datetime, new_transaction_id: Callable[[], uuid.UUID]
    ) -> None:
        self.state = state
        self.now = now
        self.new_transaction_id = new_transaction_id
        self.stored = dict(state.stored)
        self.plan = BatchPlan(now, accounts=dict(state.accounts))

    def apply(self, item: ParsedItem) -> dict[str, Any]:
        command = item.command
        if command is None:
            assert item.invalid is not None
            shop_id, command_id = salvage_key(item.payload)
            result = results.as_json(
                results.rejected(shop_id, command_id, item.invalid.rejection())
            )
            self.plan.rejected_messages.append(
                rejected_message_row(
                    item.command_type, shop_id, command_id, item.payload, result, self.now
                )
            )
            return result
        payload_hash = command.payload_hash()
        stored = self.stored.get((command.shop_id, command.command_id))
        if stored is not None:
            return self._replay(item.command_type, command, payload_hash, *stored)
        if isinstance(command, AdjustPoints):
            return self._adjust(command, payload_hash)
        return self._upsert(command, payload_hash)

    def _adjust(self, command: AdjustPoints, payload_hash: str) -> dict[str, Any]:
        account = self.plan.accounts.get((command.shop_id, command.customer_id))
        if account is None:
            if command.shop_id not in self.state.shops:
                rejection = unknown_shop(command.shop_id)
            else:
                rejection = customer_not_found(command.shop_id, command.customer_id)
            return self._record_rejection(ADJUST_POINTS, command, payload_hash, rejection)
        outcome = plan_adjustment(account.points, command, excluded=account.excluded)
        if isinstance(outcome, Rejection):
            return self._record_rejection(ADJUST_POINTS, command, payload_hash, outcome)

        transaction_id = self.new_transaction_id()
        account.points = outcome.after
        account.last_activity_at = self.now
        account.changed = True
        applied = results.applied(
            shop_id=command.shop_id,
            command_id=command.command_id,
            customer_id=command.customer_id,
            transaction_id=transaction_id,
            adjustment=outcome,
            note=command.note,
            account=results.account_view(
                command.customer_id, outcome.after, account.tier, self.now
            ),
        )
        result = results.as_json(applied)
        self.plan.ledger.append(
            LedgerRow(account, self._ledger_entry(command, outcome, transaction_id))
        )
        self._owe_side_effects(command, account, outcome, transaction_id)
        self._store(ADJUST_POINTS, command, payload_hash, result)
        return result

    def _ledger_entry(
        self, command: AdjustPoints, outcome: Adjustment, transaction_id: uuid.UUID
    ) -> dict[str, Any]:
        return {
            "transaction_id": transaction_id,
            "shop_id": command.shop_id,
            "command_id": command.command_id,
            "requested": outcome.requested,
            "applied": outcome.applied,
            "balance_before": outcome.before.balance,
            "balance_after": outcome.after.balance,
            "lifetime_before": outcome.before.lifetime,
            "lifetime_after": outcome.after.lifetime,
            "note": command.note,
            "source": command.source,
            "actor": command.actor,
            "created_at": self.now,
        }

    def _owe_side_effects(
        self,
        command: AdjustPoints,
        account: WorkingAccount,
        outcome: Adjustment,
        transaction_id: uuid.UUID,
    ) -> None:
        """The tier, email and syncs the applied adjustment owes, written with it."""
        owed = owed_side_effects(
            outcome,
            command,
            account.email,
            shop_has_tiers=command.shop_id in self.state.shops_with_tiers,
        )
        owed += [sync_task_name(p) for p in self.state.providers.get(command.shop_id, [])]
        self.plan.side_effects += [
            OwedSideEffect(task_name, account, transaction_id, outcome.after.revision)
            for task_name in owed
        ]

    def _upsert(self, command: UpsertCustomer, payload_hash: str) -> dict[str, Any]:
        key = (command.shop_id, command.customer_id)
        account = self.plan.accounts.get(key)
        created = account is None
        if account is None:
            if command.shop_id not in self.state.shops:
                return self._record_rejection(
                    UPSERT_CUSTOMER, command, payload_hash, unknown_shop(command.shop_id)
                )
            account = WorkingAccount(
                None, command.shop_id, command.customer_id, Points(), created=True, changed=True
            )
            self.plan.accounts[key] = account
        for name in ("email", "phone", "first_name", "last_name", "excluded"):
            value = getattr(command, name)
            if value is not None and value != getattr(account, name):
                setattr(account, name, value)
                account.changed = True
        result = results.as_json(results.customer_upserted(command, account, created=created))
        self._store(UPSERT_CUSTOMER, command, payload_hash, result)
        return result

    def _replay(
        self,
        command_type: str,
        command: AdjustPoints | UpsertCustomer,
        payload_hash: str,
        stored_hash: str,
        stored_result: dict[str, Any],
    ) -> dict[str, Any]:
        result, conflict = results.replayed(
            command.shop_id,
            command.command_id,
            stored_result,
            same_payload=stored_hash == payload_hash,
        )
        if conflict:
            payload = command.model_dump(mode="json")
            self.plan.rejected_messages.append(
                rejected_message_row(
                    command_type, command.shop_id, command.command_id, payload, result, self.now
                )
            )
        return result

    def _record_rejection(
        self,
        command_type: str,
        command: AdjustPoints | UpsertCustomer,
        payload_hash: str,
        rejection: Rejection,
    ) -> dict[str, Any]:
        result = results.as_json(results.rejected(command.shop_id, command.command_id, rejection))
        self._store(command_type, command, payload_hash, result)
        return result

    def _store(
        self,
        command_type: str,
        command: AdjustPoints | UpsertCustomer,
        payload_hash: str,
        result: dict[str, Any],
    ) -> None:
        self.stored[(command.shop_id, command.command_id)] = (payload_hash, result)
        self.plan.processed.append(
            processed_row(
                command.shop_id, command.command_id, command_type, payload_hash, result, self.now
            )
        )
