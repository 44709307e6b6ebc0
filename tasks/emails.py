"""The points-earned email: at least once up to the hand-over, at most once after it.

The outbox row stays locked for the whole SMTP conversation, so two deliveries of one side effect
never talk to the server at the same time. Once the whole message but its end-of-data marker has
gone out, the delivery is recorded as "sending" in a transaction of its own, and the marker leaves
as soon as that COMMIT has (not once it is confirmed). A process that dies before then has
recorded nothing, and the server drops the unfinished message: the next attempt sends it. One that
dies after it leaves the delivery "sending", and a conversation that broke after the hand-over
leaves it "unknown": neither is ever sent again, because a missing email is better than a double
one. A refusal from the server releases the delivery for a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from celery import Task

from models.domain.clock import utc_now
from models.domain.emails import PointsEarnedEmail, render_points_earned
from models.domain.names import EMAILS_QUEUE, SEND_POINTS_EARNED_EMAIL
from models.persistence.side_effect_store import OutboxRow
from models.persistence.unit_of_work import UnitOfWork
from tasks.commands import INFRASTRUCTURE_FAULTS, riding_out_faults
from tasks.side_effects import GiveUp, TryAgain, perform, side_effect_options
from workers.app import app
from workers.db import database
from workers.outbound.mailer import EmailNotSent, EmailOutcomeUnknown, SmtpSettings, send_email

log = logging.getLogger(__name__)


@app.task(name=SEND_POINTS_EARNED_EMAIL, **side_effect_options(EMAILS_QUEUE))
def send_points_earned_email(self: Task[Any, Any], outbox_id: int) -> str:
    return perform(outbox_id, _send)


def _send(outbox_id: int) -> str:
    settings = SmtpSettings.from_environment()
    refused: EmailNotSent | None = None
    with database.unit_of_work() as uow:
        row = uow.side_effects.lock_pending(outbox_id)
        if row is None or row.account_id is None:
            return "already done"
        assert row.transaction_id is not None
        earlier = uow.side_effects.email_status(row.transaction_id)
        account: Any = uow.side_effects.account_state(row.account_id)
        if earlier is not None:
            outcome = f"skipped: delivery already {earlier}"
        elif not account.email:
            outcome = "skipped: no email on file"
        else:
            message = _render(uow.side_effects.ledger_entry(row.transaction_id), account, settings)
            try:
                send_email(
                    message,
                    settings,
                    hand_over=lambda end_of_data: _hand_over(
                        row, account.email, message["Message-ID"], end_of_data
                    ),
                )
                status, outcome = "sent", "sent"
            except EmailOutcomeUnknown as unknown:
                status, outcome = "unknown", f"unknown: {unknown}"
            except EmailNotSent as error:
                refused, status = error, "failed"
            uow.side_effects.finish_email(row.transaction_id, status, utc_now())
        if refused is None:
            uow.side_effects.complete(outbox_id, outcome, utc_now())
        uow.commit()
    if refused is None:
        return outcome
    if refused.permanent:
        raise GiveUp(str(refused))
    raise TryAgain(str(refused))


def _render(entry: Any, account: Any, settings: SmtpSettings) -> EmailMessage:
    return render_points_earned(
        PointsEarnedEmail(
            transaction_id=str(entry.transaction_id),
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


def _hand_over(
    row: OutboxRow, recipient: str, message_id: str, end_of_data: Callable[[], None]
) -> None:
    """Records the hand-over, the point of no resend, and sends the end-of-data marker while
    that record's COMMIT is on its way. Should the commit then fail, the message has left all
    the same: the record is written again once the database answers."""
    assert row.account_id is not None
    assert row.transaction_id is not None
    transaction_id, account_id = row.transaction_id, row.account_id

    def record(uow: UnitOfWork) -> None:
        uow.side_effects.record_hand_over(
            transaction_id=transaction_id,
            shop_id=row.shop_id,
            account_id=account_id,
            recipient=recipient,
            message_id=str(message_id),
            now=utc_now(),
        )

    sent: list[bool] = []

    def send_end_of_data() -> None:
        sent.append(True)
        end_of_data()

    try:
        with database.unit_of_work() as uow:
            record(uow)
            uow.commit_overlapping(send_end_of_data)
    except INFRASTRUCTURE_FAULTS as fault:
        if not sent:
            raise
        log.warning("email of %s handed over, its record not confirmed: %r", transaction_id, fault)
        riding_out_faults(lambda: _record_again(record))


def _record_again(record: Callable[[UnitOfWork], None]) -> None:
    with database.unit_of_work() as uow:
        record(uow)
        uow.commit()
