"""The points-earned and points-expiring emails: at least once up to the hand-over, at most once
after it.

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
from typing import Any, Protocol

from models.domain.clock import utc_now
from models.domain.emails import (
    PointsEarnedEmail,
    PointsExpiringEmail,
    render_points_earned,
    render_points_expiring,
)
from models.persistence.faults import INFRASTRUCTURE_FAULTS
from models.persistence.outbox import OutboxRow
from models.persistence.unit_of_work import UnitOfWork
from models.services.side_effects import GiveUp, TryAgain, UnitsOfWork

log = logging.getLogger(__name__)

HandOver = Callable[[Callable[[], None]], None]
"""Called by the mailer with the end-of-data marker's sender, once all else has gone out."""


class EmailRefused(Exception):
    """The SMTP server refused the message; ``permanent`` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class EmailOutcomeUnsure(Exception):
    """The conversation broke after the hand-over: the message may or may not have been sent."""


class Mailer(Protocol):
    """An SMTP client (``workers.outbound.mailer``), as the task wires it."""

    @property
    def default_sender(self) -> str: ...

    def send(self, message: EmailMessage, hand_over: HandOver) -> None:
        """Sends the message, calling ``hand_over`` before its end-of-data marker; raises
        ``EmailRefused`` or ``EmailOutcomeUnsure``."""


RideOut = Callable[[Callable[[], None]], None]
"""Runs a unit of work again through database faults (``tasks.commands.riding_out_faults``)."""


Compose = Callable[[UnitOfWork, OutboxRow, Any, str], EmailMessage | None]
"""The email an outbox row owes, for the account (``AccountStore.with_shop``) and the default
sender; None when there is nothing to send any more."""


def send_points_earned(
    unit_of_work: UnitsOfWork, outbox_id: int, mailer: Mailer, ride_out: RideOut
) -> str:
    return _send(unit_of_work, outbox_id, mailer, ride_out, _points_earned)


def send_points_expiring(
    unit_of_work: UnitsOfWork, outbox_id: int, mailer: Mailer, ride_out: RideOut
) -> str:
    return _send(unit_of_work, outbox_id, mailer, ride_out, _points_expiring)


def _send(
    unit_of_work: UnitsOfWork, outbox_id: int, mailer: Mailer, ride_out: RideOut, compose: Compose
) -> str:
    refused: EmailRefused | None = None
    with unit_of_work() as uow:
        row = uow.outbox.lock_pending(outbox_id)
        if row is None or row.account_id is None:
            return "already done"
        assert row.transaction_id is not None
        earlier = uow.deliveries.email_status(row.transaction_id)
        account: Any = uow.accounts.with_shop(row.account_id)
        if earlier is not None:
            outcome = f"skipped: delivery already {earlier}"
        elif not account.email:
            outcome = "skipped: no email on file"
        elif (message := compose(uow, row, account, mailer.default_sender)) is None:
            outcome = "skipped: nothing left to say"
        else:
            try:
                mailer.send(
                    message,
                    lambda end_of_data: _hand_over(
                        unit_of_work,
                        ride_out,
                        row,
                        account.email,
                        message["Message-ID"],
                        end_of_data,
                    ),
                )
                status, outcome = "sent", "sent"
            except EmailOutcomeUnsure as unknown:
                status, outcome = "unknown", f"unknown: {unknown}"
            except EmailRefused as error:
                refused, status = error, "failed"
            uow.deliveries.finish_email(row.transaction_id, status, utc_now())
        if refused is None:
            uow.outbox.complete(outbox_id, outcome, utc_now())
        uow.commit()
    if refused is None:
        return outcome
    if refused.permanent:
        raise GiveUp(str(refused))
    raise TryAgain(str(refused))


def _addressing(account: Any, default_sender: str) -> dict[str, Any]:
    """Who an email to the account's customer is from and to, for either email."""
    return {
        "shop_name": account.shop_name or account.shop_id,
        "sender": account.email_from or default_sender,
        "recipient": account.email,
        "first_name": account.first_name,
    }


def _points_earned(
    uow: UnitOfWork, row: OutboxRow, account: Any, default_sender: str
) -> EmailMessage:
    assert row.transaction_id is not None
    entry = uow.ledger.entry(row.transaction_id)
    return render_points_earned(
        PointsEarnedEmail(
            transaction_id=str(entry.transaction_id),
            **_addressing(account, default_sender),
            points=entry.applied,
            balance=entry.balance_after,
            lifetime_points=entry.lifetime_after,
            tier=account.tier_name,
        )
    )


def _points_expiring(
    uow: UnitOfWork, row: OutboxRow, account: Any, default_sender: str
) -> EmailMessage | None:
    """The reminder of a lot; not once the lot has expired or been spent (the points it names
    are gone, and the email would only alarm)."""
    assert row.transaction_id is not None
    reminder = uow.lots.reminder(row.transaction_id)
    if reminder is None:
        return None
    still_held = uow.lots.points_expiring_at(reminder.account_id, reminder.expires_at)
    if still_held == 0 or reminder.expires_at <= utc_now():
        return None
    return render_points_expiring(
        PointsExpiringEmail(
            reminder_id=str(reminder.id),
            **_addressing(account, default_sender),
            points=still_held,
            expires_at=reminder.expires_at,
            balance=account.balance,
        )
    )


def _hand_over(
    unit_of_work: UnitsOfWork,
    ride_out: RideOut,
    row: OutboxRow,
    recipient: str,
    message_id: str,
    end_of_data: Callable[[], None],
) -> None:
    """Records the hand-over, the point of no resend, and sends the end-of-data marker while
    that record's COMMIT is on its way. Should the commit then fail, the message has left all
    the same: the record is written again once the database answers."""
    assert row.account_id is not None
    assert row.transaction_id is not None
    transaction_id, account_id = row.transaction_id, row.account_id

    def record(uow: UnitOfWork) -> None:
        uow.deliveries.record_hand_over(
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
        with unit_of_work() as uow:
            record(uow)
            uow.commit_overlapping(send_end_of_data)
    except INFRASTRUCTURE_FAULTS as fault:
        if not sent:
            raise
        log.warning("email of %s handed over, its record not confirmed: %r", transaction_id, fault)
        ride_out(lambda: _record_again(unit_of_work, record))


def _record_again(unit_of_work: UnitsOfWork, record: Callable[[UnitOfWork], None]) -> None:
    with unit_of_work() as uow:
        record(uow)
        uow.commit()
