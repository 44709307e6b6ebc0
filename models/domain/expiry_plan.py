"""An expiry run's plan for a page of accounts of one shop, read under their locks like a batch
of commands and written the same way: what expired leaves each balance with a ledger entry of
kind ``expire``, and lots entering the reminder window are announced once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from models.domain.adjustments import Adjustment
from models.domain.batch import BatchPlan, BatchState, ReminderRow, WorkingAccount, ledger_row
from models.domain.expiry import ExpiryPolicy, expire
from models.domain.names import SEND_POINTS_EXPIRING_EMAIL
from models.domain.results import timestamp
from models.domain.reversals import EntryKind

EXPIRY_SOURCE = "expiry"
"""The ledger's ``source`` of an expiry entry."""

Reminded = set[tuple[int, datetime]]
"""(account id, expiry moment) of the reminders recorded already."""


def plan_expiry(
    state: BatchState,
    reminded: Reminded,
    as_of: datetime,
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> BatchPlan:
    plan = BatchPlan(now, accounts=dict(state.accounts))
    for account in plan.accounts.values():
        policy = state.expiry_policies.get(account.shop_id)
        if account.lots is None or policy is None:
            continue
        _expire(plan, state, account, as_of, new_id)
        _remind(plan, state, account, policy, reminded, as_of, new_id)
    return plan


def _expire(
    plan: BatchPlan,
    state: BatchState,
    account: WorkingAccount,
    as_of: datetime,
    new_id: Callable[[], uuid.UUID],
) -> None:
    assert account.lots is not None
    after = expire(account.points, account.lots, as_of)
    if after is None:
        return
    transaction_id = new_id()
    moved = after.balance - account.points.balance
    change = Adjustment(requested=moved, applied=moved, before=account.points, after=after)
    account.points = after
    account.changed = True
    plan.ledger.append(
        ledger_row(
            account,
            transaction_id,
            f"expiry-{transaction_id}",
            change,
            plan.now,
            kind=EntryKind.EXPIRE,
            note=f"{-moved} points expired as of {timestamp(as_of)}",
            source=EXPIRY_SOURCE,
        )
    )
    plan.owe(state.syncs(account.shop_id), account, transaction_id)


def _remind(
    plan: BatchPlan,
    state: BatchState,
    account: WorkingAccount,
    policy: ExpiryPolicy,
    reminded: Reminded,
    as_of: datetime,
    new_id: Callable[[], uuid.UUID],
) -> None:
    """Each lot that has come within the reminder window: one reminder, its email when the
    customer has an address, and the providers' "expiring soon" event."""
    assert account.lots is not None
    assert account.id is not None
    for lot in account.lots:
        reminds_at = policy.reminds_at(lot.expires_at)
        if (
            reminds_at is None
            or lot.points == 0
            or not reminds_at <= as_of < lot.expires_at
            or (account.id, lot.expires_at) in reminded
        ):
            continue
        reminder = ReminderRow(account, new_id(), lot.expires_at, lot.points)
        plan.reminders.append(reminder)
        owed = state.syncs(account.shop_id)
        if account.email:
            owed = [SEND_POINTS_EXPIRING_EMAIL, *owed]
        plan.owe(owed, account, reminder.id)
