"""The SMTP conversation up to the message data: connect, greet (STARTTLS, AUTH), address the
envelope, and send the payload but its end-of-data marker. Until that marker goes out the server
cannot have accepted the message, so every failure here is ``EmailNotSent``."""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from workers.outbound.mailer.errors import (
    EmailNotSent,
    decode,
    expect,
    is_permanent,
    not_sent,
    redacted,
    refused,
)
from workers.outbound.mailer.message import Envelope, data_payload
from workers.outbound.mailer.settings import SmtpSettings


@dataclass
class Session:
    """One connection, and the command it is at: a failure's message names it."""

    connection: smtplib.SMTP
    settings: SmtpSettings
    where: str
    step: str = "EHLO"


def connect(settings: SmtpSettings) -> Session:
    where = f"SMTP server {settings.host}:{settings.port}"
    try:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    except smtplib.SMTPResponseException as error:
        raise refused(settings, f"{where} refused the connection", error) from error
    except OSError as error:
        raise not_sent(settings, f"could not connect to {where}", error, permanent=False) from error
    # The end-of-data marker goes out in a write of its own: Nagle would hold it ~40 ms.
    if connection.sock is not None:
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Session(connection, settings, where)


def send_up_to_end_of_data(session: Session, message: EmailMessage, envelope: Envelope) -> None:
    settings, where = session.settings, session.where
    try:
        _greet(session)
        _address(session, envelope)
        session.step = "DATA"
        expect(session.connection.docmd("DATA"), 354, settings, f"{where} refused DATA")
        session.step = "sending the message"
        # A failure here leaves the end-of-data marker unsent, so the server discards the
        # partial message.
        session.connection.send(data_payload(message, envelope.international))
    except smtplib.SMTPResponseException as error:
        raise refused(settings, f"{where} refused {session.step}", error) from error
    except smtplib.SMTPServerDisconnected as error:
        context = f"{where} disconnected during {session.step}"
        raise not_sent(settings, context, error, permanent=False) from error
    except smtplib.SMTPException as error:
        # What remains is a missing capability (STARTTLS, AUTH or a mechanism in common):
        # configuration, which retrying will not fix.
        context = f"{where} cannot do {session.step}"
        raise not_sent(settings, context, error, permanent=True) from error
    except OSError as error:
        context = f"{where} failed during {session.step}"
        raise not_sent(settings, context, error, permanent=False) from error


def _greet(session: Session) -> None:
    connection, settings = session.connection, session.settings
    connection.ehlo_or_helo_if_needed()
    if settings.starttls:
        session.step = "STARTTLS"
        connection.starttls(context=ssl.create_default_context())
        session.step = "EHLO after STARTTLS"
        connection.ehlo()
    if settings.username is not None:
        session.step = "AUTH"
        connection.login(settings.username, settings.password or "")


def _address(session: Session, envelope: Envelope) -> None:
    connection, settings, where = session.connection, session.settings, session.where
    options: list[str] = []
    if envelope.international:
        if not connection.has_extn("smtputf8"):
            raise EmailNotSent(
                f"{where} does not support SMTPUTF8, needed for a non-ASCII address",
                permanent=True,
            )
        options = ["SMTPUTF8", "BODY=8BITMIME"]
    session.step = "MAIL FROM"
    expect(connection.mail(envelope.sender, options), 250, settings, f"{where} refused MAIL FROM")
    refusals = []
    for recipient in envelope.recipients:
        session.step = "RCPT TO"
        code, reply = connection.rcpt(recipient)
        if code not in (250, 251):
            refusals.append((recipient, code, reply))
    if refusals:
        raise EmailNotSent(
            redacted(
                f"{where} refused recipients: "
                + "; ".join(f"{r}: {c} {decode(t)}" for r, c, t in refusals),
                settings,
            ),
            # One recipient refused for good means a retry can never fully succeed.
            permanent=any(is_permanent(code) for _, code, _ in refusals),
            smtp_code=refusals[0][1],
        )


def close(connection: smtplib.SMTP) -> None:
    """QUIT politely when the session is still usable; the outcome is already decided."""
    try:
        if connection.sock is not None:
            connection.quit()
    except OSError:
        pass
    finally:
        connection.close()
