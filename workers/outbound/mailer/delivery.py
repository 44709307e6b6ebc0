"""``send_email``: the session up to the message data, then the end-of-data marker, handed over
to the caller, and the server's verdict. Once the marker is out the server may have the whole
message, so a lost or garbled reply is ``EmailOutcomeUnknown``."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage

from workers.outbound.mailer.errors import (
    EmailOutcomeUnknown,
    decode,
    describe,
    redacted,
    refusal,
)
from workers.outbound.mailer.message import END_OF_DATA, envelope_of
from workers.outbound.mailer.session import Session, close, connect, send_up_to_end_of_data
from workers.outbound.mailer.settings import SmtpSettings

HandOver = Callable[[Callable[[], None]], None]
"""Called once the whole message but its end-of-data marker has gone out, the last moment at
which stopping still makes the server drop the message, with the function that sends that
marker. It either calls the function (once) or raises without calling it, which aborts the
session unsent."""


def send_email(
    message: EmailMessage, settings: SmtpSettings, *, hand_over: HandOver | None = None
) -> None:
    """Deliver ``message`` to its To and Cc addresses, from the address in its From header.

    Returns once the server has accepted the message. Raises ``EmailNotSent`` or
    ``EmailOutcomeUnknown`` (see each) and ``ValueError`` when the message lacks a sender or
    recipients; whatever ``hand_over`` raises propagates as it is.
    """
    envelope = envelope_of(message)
    session = connect(settings)
    try:
        send_up_to_end_of_data(session, message, envelope)
        end_of_data = _hand_over_end_of_data(session, hand_over or _hand_over_at_once)
        _await_verdict(session, end_of_data)
    finally:
        close(session.connection)


def _hand_over_at_once(end_of_data: Callable[[], None]) -> None:
    end_of_data()


class _EndOfData:
    """Sends the end-of-data marker; remembers that it was sent, and how that failed."""

    def __init__(self, connection: smtplib.SMTP) -> None:
        self._connection = connection
        self.sent = False
        self.error: OSError | None = None

    def __call__(self) -> None:
        if self.sent:
            raise RuntimeError("the end-of-data marker was already sent")
        self.sent = True
        try:
            self._connection.send(END_OF_DATA)
        except OSError as error:
            self.error = error


def _hand_over_end_of_data(session: Session, hand_over: HandOver) -> _EndOfData:
    connection = session.connection
    end_of_data = _EndOfData(connection)
    try:
        hand_over(end_of_data)
    except BaseException:
        if not end_of_data.sent:
            connection.close()  # no QUIT: inside DATA it would only be more message text
        raise
    if not end_of_data.sent:
        connection.close()
        raise RuntimeError("hand_over returned without sending the end-of-data marker")
    return end_of_data


def _await_verdict(session: Session, end_of_data: _EndOfData) -> None:
    """From here on the server may have the whole message: only its reply says what it did
    with it."""
    settings, where = session.settings, session.where
    try:
        if end_of_data.error is not None:
            raise end_of_data.error
        code, reply = session.connection.getreply()
    except OSError as error:
        raise EmailOutcomeUnknown(
            redacted(
                f"{where} sent no reply after the message data ({describe(error)}); "
                "it may have been delivered",
                settings,
            )
        ) from error
    if 200 <= code < 300:
        return
    if 400 <= code < 600:
        raise refusal(settings, f"{where} refused the message", code, reply)
    raise EmailOutcomeUnknown(
        redacted(
            f"{where} replied {code} {decode(reply)!r} after the message data; "
            "it may have been delivered",
            settings,
        )
    )
