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
from datetime import datetime
from typing import Any

from models.domain import results
from models.domain.adjustments import Adjustment, Points, earns_email, plan_adjustment
from models.domain.batch import BatchPlan, BatchState, WorkingAccount, ledger_row
from models.domain.command_log import processed_row, rejected_message_row
from models.domain.commands import (
    ADJUST_POINTS,
    REVERSE_ADJUSTMENT,
    UPSERT_CUSTOMER,
    AdjustPoints,
    Command,
    ReverseAdjustment,
    UpsertCustomer,
    salvage_key,
)
from models.domain.errors import (
    Rejection,
    customer_not_found,
    transaction_not_found,
    unknown_shop,
)
from models.domain.expiry import move_lots, next_expiration
from models.domain.parsing import ParsedItem
from models.domain.reversals import EntryKind, ReversibleEntry, plan_reversal
from models.domain.side_effects import owed_side_effects

PointsCommand = AdjustPoints | ReverseAdjustment
PROFILE_FIELDS = ("email", "phone", "first_name", "last_name")
"""What the providers' profiles show of a customer: a change of one owes the syncs."""


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
        self.reversible = dict(state.reversible)
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
        if isinstance(command, UpsertCustomer):
            return self._upsert(command, payload_hash)
        account = self.plan.accounts.get((command.shop_id, command.customer_id))
        if account is None:
            if command.shop_id not in self.state.shops:
                rejection = unknown_shop(command.shop_id)
            else:
                rejection = customer_not_found(command.shop_id, command.customer_id)
            return self._record_rejection(item.command_type, command, payload_hash, rejection)
        if isinstance(command, AdjustPoints):
            return self._adjust(command, account, payload_hash)
        return self._reverse(command, account, payload_hash)

    def _adjust(
        self, command: AdjustPoints, account: WorkingAccount, payload_hash: str
    ) -> dict[str, Any]:
        outcome = plan_adjustment(account.points, command, excluded=account.excluded)
        if isinstance(outcome, Rejection):
            return self._record_rejection(ADJUST_POINTS, command, payload_hash, outcome)
        email = earns_email(outcome, command, account.email)
        transaction_id = self._change_points(command, account, outcome, sends_email=email)
        applied = results.applied(
            shop_id=command.shop_id,
            command_id=command.command_id,
            customer_id=command.customer_id,
            transaction_id=transaction_id,
            adjustment=outcome,
            note=command.note,
            account=self._account_view(account),
        )
        return self._store(ADJUST_POINTS, command, payload_hash, results.as_json(applied))

    def _reverse(
        self, command: ReverseAdjustment, account: WorkingAccount, payload_hash: str
    ) -> dict[str, Any]:
        reverses = uuid.UUID(command.transaction_id)
        original = self.reversible.get(reverses)
        if original is None or (original.shop_id, original.account_id) != (
            account.shop_id,
            account.id,
        ):
            rejection = transaction_not_found(command.transaction_id, command.customer_id)
            return self._record_rejection(REVERSE_ADJUSTMENT, command, payload_hash, rejection)
        outcome = plan_reversal(account.points, original, command, excluded=account.excluded)
        if isinstance(outcome, Rejection):
            return self._record_rejection(REVERSE_ADJUSTMENT, command, payload_hash, outcome)
        self.reversible[reverses] = original.after(outcome)
        transaction_id = self._change_points(
            command, account, outcome.adjustment, sends_email=False, reversed_entry=original
        )
        applied = results.reversal_applied(
            shop_id=command.shop_id,
            command_id=command.command_id,
            customer_id=command.customer_id,
            transaction_id=transaction_id,
            reverses_transaction_id=reverses,
            reversal=outcome,
            note=command.note,
            account=self._account_view(account),
        )
        return self._store(REVERSE_ADJUSTMENT, command, payload_hash, results.as_json(applied))

    def _change_points(
        self,
        command: PointsCommand,
        account: WorkingAccount,
        outcome: Adjustment,
        *,
        sends_email: bool,
        reversed_entry: ReversibleEntry | None = None,
    ) -> uuid.UUID:
        """The account moves, with its ledger entry and the side effects it owes."""
        transaction_id = self.new_transaction_id()
        account.points = outcome.after
        account.last_activity_at = self.now
        account.changed = True
        if account.lots is not None:
            policy = self.state.expiry_policies[account.shop_id]
            move_lots(account.lots, outcome.before.balance, outcome.applied, policy, self.now)
        self.plan.ledger.append(
            ledger_row(
                account,
                transaction_id,
                command.command_id,
                outcome,
                self.now,
                kind=EntryKind.ADJUST if reversed_entry is None else EntryKind.REVERSE,
                note=command.note,
                source=command.source,
                actor=command.actor,
                reverses=None if reversed_entry is None else reversed_entry.transaction_id,
            )
        )
        owed = owed_side_effects(
            outcome,
            sends_email=sends_email,
            shop_has_tiers=command.shop_id in self.state.shops_with_tiers,
        )
        self.plan.owe(owed + self.state.syncs(command.shop_id), account, transaction_id)
        return transaction_id

    def _account_view(self, account: WorkingAccount) -> results.Account:
        return results.account_view(
            account.customer_id,
            account.points,
            account.tier,
            account.last_activity_at,
            next_expiration(account.lots),
        )

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
            if command.shop_id in self.state.expiry_policies:
                account.lots = []
            self.plan.accounts[key] = account
        profile_changed = False
        for name in (*PROFILE_FIELDS, "excluded"):
            value = getattr(command, name)
            if value is not None and value != getattr(account, name):
                setattr(account, name, value)
                account.changed = True
                profile_changed |= name in PROFILE_FIELDS
        if profile_changed:
            self.plan.owe(self.state.syncs(command.shop_id), account, None)
        result = results.as_json(results.customer_upserted(command, account, created=created))
        return self._store(UPSERT_CUSTOMER, command, payload_hash, result)

    def _replay(
        self,
        command_type: str,
        command: Command,
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
        self, command_type: str, command: Command, payload_hash: str, rejection: Rejection
    ) -> dict[str, Any]:
        result = results.as_json(results.rejected(command.shop_id, command.command_id, rejection))
        return self._store(command_type, command, payload_hash, result)

    def _store(
        self, command_type: str, command: Command, payload_hash: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        self.stored[(command.shop_id, command.command_id)] = (payload_hash, result)
        self.plan.processed.append(
            processed_row(
                command.shop_id, command.command_id, command_type, payload_hash, result, self.now
            )
        )
        return result
