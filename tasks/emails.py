"""The points-earned email, at most once per transaction.

The delivery is claimed (and committed) before the SMTP conversation starts. A refusal releases
the claim so a later attempt may send; a conversation that broke after the message was handed over
leaves it "unknown" and it is never sent again: a missing email is better than a double one.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from celeryconfig import EMAILS_QUEUE
from models.emails import PointsEarnedEmail, render_points_earned
from models.handlers import utc_now
from models.side_effects import SEND_POINTS_EARNED_EMAIL
from models.unit_of_work import UnitOfWork
from tasks.side_effects import GiveUp, TryAgain, perform, side_effect_options
from workers.app import app
from workers.db import database
from workers.mailer import EmailNotSent, EmailOutcomeUnknown, SmtpSettings, send_email


@app.task(name=SEND_POINTS_EARNED_EMAIL, **side_effect_options(EMAILS_QUEUE))
def send_points_earned_email(self: Task[Any, Any], outbox_id: int) -> str:
    return perform(self, outbox_id, _send)


def _send(outbox_id: int) -> str:
    settings = SmtpSettings.from_environment()
    uow = database.unit_of_work()
    with uow:
        row = uow.side_effects.lock_pending(outbox_id)
        if row is None or row.account_id is None:
            return "already done"
        assert row.transaction_id is not None
        account: Any = uow.side_effects.account_state(row.account_id)
        entry = uow.side_effects.ledger_entry(row.transaction_id)
        if not account.email:
            return _complete(uow, outbox_id, "skipped: no email on file")
        message = render_points_earned(
            PointsEarnedEmail(
                transaction_id=str(row.transaction_id),
                shop_name=account.shop_name or account.shop_id,
                sender=account.email_from or settings.default_sender,
                recipient=account.email,
                first_name=account.first_name,
                points=entry.applied,
                balance=entry.balance_after,
                lifetime_points=entry.lifetime_after,
                tier=account.tier_name,
            )
        )
        earlier = uow.side_effects.claim_email(
            transaction_id=row.transaction_id,
            shop_id=row.shop_id,
            account_id=row.account_id,
            recipient=account.email,
            message_id=str(message["Message-ID"]),
            now=utc_now(),
        )
        if earlier is not None:
            return _complete(uow, outbox_id, f"skipped: delivery already {earlier}")
        uow.commit()

    try:
        send_email(message, settings)
    except EmailNotSent as refused:
        _settle(outbox_id, row.transaction_id, "failed", outcome=None)
        if refused.permanent:
            raise GiveUp(str(refused)) from None
        raise TryAgain(str(refused)) from None
    except EmailOutcomeUnknown as unknown:
        return _settle(outbox_id, row.transaction_id, "unknown", outcome=f"unknown: {unknown}")
    return _settle(outbox_id, row.transaction_id, "sent", outcome="sent")


def _settle(outbox_id: int, transaction_id: Any, status: str, *, outcome: str | None) -> str:
    with database.unit_of_work() as uow:
        uow.side_effects.finish_email(transaction_id, status, utc_now())
        if outcome is not None:
            uow.side_effects.complete(outbox_id, outcome, utc_now())
        uow.commit()
    return outcome or status


def _complete(uow: UnitOfWork, outbox_id: int, outcome: str) -> str:
    uow.side_effects.complete(outbox_id, outcome, utc_now())
    uow.commit()
    return outcome
