"""Expiring points: a shop's policy switched on or off, and the expiry run that takes what expired
off the balances and reminds customers of what soon will.

A run goes shop by shop, a page of accounts per transaction, each page read under the accounts'
locks like a batch of commands: two runs at once, or the same run again, find the lots already
emptied and the reminders already recorded, so nothing is expired or announced twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.domain.clock import utc_now
from models.domain.expiry import ExpiryPolicy
from models.domain.expiry_plan import plan_expiry
from models.domain.parsing import BatchKeys
from models.persistence.unit_of_work import UnitOfWork
from models.services.side_effects import UnitsOfWork

PAGE_SIZE = 500
"""Accounts per transaction: a run over a million customers holds no lock for long."""


@dataclass
class ExpiryReport:
    as_of: datetime
    accounts: int = 0
    """Accounts whose points expired."""
    points: int = 0
    reminders: int = 0
    complete: bool = True
    """False when the run stopped at its deadline with accounts left to look at."""


def run_expiry(
    unit_of_work: UnitsOfWork,
    *,
    as_of: datetime | None = None,
    shop_id: str | None = None,
    page_size: int = PAGE_SIZE,
    deadline: float | None = None,
) -> ExpiryReport:
    """Expire what has expired as of ``as_of`` (now by default) in every shop with a policy, or
    in ``shop_id`` alone, and record the reminders due by then; no page is started after
    ``deadline`` (``time.monotonic``)."""
    report = ExpiryReport(as_of or utc_now())
    with unit_of_work() as uow:
        policies = uow.shops.expiry_policies(shop_id)
    for shop, policy in policies.items():
        after_id: int | None = 0
        while after_id is not None:
            if deadline is not None and time.monotonic() > deadline:
                report.complete = False
                return report
            after_id = _run_page(unit_of_work(), shop, policy, report, after_id, page_size)
    return report


def _run_page(
    uow: UnitOfWork,
    shop_id: str,
    policy: ExpiryPolicy,
    report: ExpiryReport,
    after_id: int,
    page_size: int,
) -> int | None:
    """One transaction; returns the last account id done, None when the shop is done."""
    as_of = report.as_of
    with uow:
        due = uow.lots.due(
            shop_id,
            as_of=as_of,
            remind_until=as_of + timedelta(days=policy.reminder_days),
            after_id=after_id,
            limit=page_size,
        )
        if not due:
            return None
        state = uow.batches.read(
            BatchKeys(customers={(shop_id, customer_id) for _, customer_id in due}), lock=True
        )
        reminded = uow.lots.reminded((account_id for account_id, _ in due), after=as_of)
        plan = plan_expiry(state, reminded, as_of, utc_now())
        uow.owe(uow.batches.write(plan))
        uow.commit()
    report.accounts += len(plan.ledger)
    report.points -= sum(row.values["applied"] for row in plan.ledger)
    report.reminders += len(plan.reminders)
    return due[-1][0]


def set_policy(
    uow: UnitOfWork, shop_id: str, *, expire_after_days: int | None, reminder_days: int | None
) -> bool:
    """Change the shop's policy in the caller's transaction; False when there is no shop.

    Turning expiry on makes each account's balance one lot from now; turning it off drops the
    lots, so nothing expires any more. The accounts are locked first, so no batch of commands
    moves a balance between the lots being made and the policy being seen."""
    current = uow.shops.get(shop_id)
    if current is None:
        return False
    changes = {}
    if reminder_days is not None:
        changes["expiry_reminder_days"] = reminder_days
    if expire_after_days is not None:
        changes["points_expire_after_days"] = expire_after_days
    if expire_after_days is not None and bool(expire_after_days) != bool(
        current.points_expire_after_days
    ):
        uow.accounts.lock_shop(shop_id)
        if expire_after_days:
            policy = ExpiryPolicy(expire_after_days, current.expiry_reminder_days)
            uow.lots.open_for_shop(shop_id, policy.lot_expiry(utc_now()))
        else:
            uow.lots.drop_for_shop(shop_id)
    uow.shops.update(shop_id, changes)
    return True
