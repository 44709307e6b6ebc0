"""Sends one email over SMTP and, when that fails, says whether the server may have it.

At-most-once delivery hinges on that difference. Until the end of the DATA payload has gone out
the server cannot have accepted the message, so trying again is safe (``EmailNotSent``). Once it
has gone out, a lost or garbled reply leaves the outcome unknown and a resend could deliver the
email twice (``EmailOutcomeUnknown``). ``smtplib.SMTP.send_message`` hides where a failure
happened, so the session is driven one command at a time.
"""

from __future__ import annotations

import math
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses

_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; ``default_sender`` is the From for shops without their own."""

    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 10.0
    default_sender: str = "loyalty@localhost"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read the ``LOYALTY_SMTP_*`` variables; an empty variable counts as unset.

        Raises ``ValueError`` naming the variable when a value is invalid. The password's value
        is never part of an error message.
        """
        env = os.environ if environ is None else environ
        host = _text(env, "LOYALTY_SMTP_HOST") or "localhost"
        username = _text(env, "LOYALTY_SMTP_USERNAME")
        password = env.get("LOYALTY_SMTP_PASSWORD") or None
        if username is None and password is not None:
            raise ValueError("LOYALTY_SMTP_PASSWORD is set but LOYALTY_SMTP_USERNAME is not")
        if username is not None and password is None:
            raise ValueError("LOYALTY_SMTP_USERNAME is set but LOYALTY_SMTP_PASSWORD is not")
        return cls(
            host=host,
            port=_port(env, "LOYALTY_SMTP_PORT", default=25),
            username=username,
            password=password,
            starttls=_flag(env, "LOYALTY_SMTP_STARTTLS", default=False),
            timeout=_seconds(env, "LOYALTY_SMTP_TIMEOUT", default=10.0),
            default_sender=_address(env, "LOYALTY_EMAIL_FROM", default="loyalty@localhost"),
        )


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _port(env: Mapping[str, str], name: str, *, default: int) -> int:
    value = _text(env, name)
    if value is None:
        return default
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError(f"{name} must be a port number from 1 to 65535, got {value!r}")
    return port


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = _text(env, name)
    if value is None:
        return default
    if value.lower() in _TRUE_WORDS:
        return True
    if value.lower() in _FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be one of true/false/1/0/yes/no, got {value!r}")


def _seconds(env: Mapping[str, str], name: str, *, default: float) -> float:
    value = _text(env, name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


def _address(env: Mapping[str, str], name: str, *, default: str) -> str:
    value = _text(env, name)
    if value is None:
        return default
    addresses = getaddresses([value])
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        raise ValueError(f"{name} must be one email address, got {value!r}")
    return value


class EmailDeliveryError(Exception):
    """Base of the two ways sending can fail."""


class EmailNotSent(EmailDeliveryError):
    """The server did not accept the message, for certain: sending again cannot duplicate it.

    ``permanent`` is True when the server refused for good (a 5xx reply such as 550 recipient
    unknown or 535 bad credentials, or a capability it lacks): retrying would fail the same way,
    so the caller should dead-letter. ``smtp_code`` is the server's reply code when there was one.
    """

    def __init__(self, reason: str, permanent: bool, smtp_code: int | None = None) -> None:
        # Every argument goes to Exception.args so the exception pickles (Celery results).
        super().__init__(reason, permanent, smtp_code)
        self.reason = reason
        self.permanent = permanent
        self.smtp_code = smtp_code

    def __str__(self) -> str:
        return self.reason


class EmailOutcomeUnknown(EmailDeliveryError):
    """The whole message went out but no clear reply came back: it may have been delivered.

    Sending again could deliver it twice, so an at-most-once caller must not resend.
    """


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
    sender, recipients = _envelope(message)
    international = not all(address.isascii() for address in (sender, *recipients))
    where = f"SMTP server {settings.host}:{settings.port}"
    try:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    except smtplib.SMTPResponseException as error:
        raise _refused(settings, f"{where} refused the connection", error) from error
    except OSError as error:
        raise EmailNotSent(
            _redacted(f"could not connect to {where}: {_describe(error)}", settings),
            permanent=False,
        ) from error
    # The end-of-data marker goes out in a write of its own: Nagle would hold it ~40 ms.
    if connection.sock is not None:
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        _transfer(
            connection, message, sender, recipients, international, settings, where,
            hand_over or _hand_over_at_once,
        )  # fmt: skip
    finally:
        _close(connection)


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
            self._connection.send(_END_OF_DATA)
        except OSError as error:
            self.error = error


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    senders = [address for _, address in getaddresses(message.get_all("From", [])) if address]
    if len(senders) != 1:
        raise ValueError(f"the message needs exactly one From address, got {senders}")
    recipients = [
        address
        for _, address in getaddresses([*message.get_all("To", []), *message.get_all("Cc", [])])
        if address
    ]
    if not recipients:
        raise ValueError("the message has no To or Cc address")
    return senders[0], recipients


def _transfer(
    connection: smtplib.SMTP,
    message: EmailMessage,
    sender: str,
    recipients: list[str],
    international: bool,
    settings: SmtpSettings,
    where: str,
    hand_over: HandOver,
) -> None:
    step = "EHLO"
    try:
        connection.ehlo_or_helo_if_needed()
        if settings.starttls:
            step = "STARTTLS"
            connection.starttls(context=ssl.create_default_context())
            step = "EHLO after STARTTLS"
            connection.ehlo()
        if settings.username is not None:
            step = "AUTH"
            connection.login(settings.username, settings.password or "")
        options: list[str] = []
        if international:
            if not connection.has_extn("smtputf8"):
                raise EmailNotSent(
                    f"{where} does not support SMTPUTF8, needed for a non-ASCII address",
                    permanent=True,
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        step = "MAIL FROM"
        _expect(connection.mail(sender, options), 250, settings, f"{where} refused {step}")
        refusals = []
        for recipient in recipients:
            step = "RCPT TO"
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                refusals.append((recipient, code, reply))
        if refusals:
            raise EmailNotSent(
                _redacted(
                    f"{where} refused recipients: "
                    + "; ".join(f"{r}: {c} {_decode(t)}" for r, c, t in refusals),
                    settings,
                ),
                # One recipient refused for good means a retry can never fully succeed.
                permanent=any(_is_permanent(code) for _, code, _ in refusals),
                smtp_code=refusals[0][1],
            )
        step = "DATA"
        _expect(connection.docmd("DATA"), 354, settings, f"{where} refused {step}")
        step = "sending the message"
        # A failure here leaves the end-of-data marker unsent, so the server discards the
        # partial message.
        connection.send(_data_payload(message, international))
    except smtplib.SMTPResponseException as error:
        raise _refused(settings, f"{where} refused {step}", error) from error
    except smtplib.SMTPServerDisconnected as error:
        raise EmailNotSent(
            _redacted(f"{where} disconnected during {step}: {_describe(error)}", settings),
            permanent=False,
        ) from error
    except smtplib.SMTPException as error:
        # What remains is a missing capability (STARTTLS, AUTH or a mechanism in common):
        # configuration, which retrying will not fix.
        raise EmailNotSent(
            _redacted(f"{where} cannot do {step}: {_describe(error)}", settings), permanent=True
        ) from error
    except OSError as error:
        raise EmailNotSent(
            _redacted(f"{where} failed during {step}: {_describe(error)}", settings),
            permanent=False,
        ) from error

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
    # From here on the server may have the whole message: only its reply says what it did with it.
    try:
        if end_of_data.error is not None:
            raise end_of_data.error
        code, reply = connection.getreply()
    except OSError as error:
        raise EmailOutcomeUnknown(
            _redacted(
                f"{where} sent no reply after the message data ({_describe(error)}); "
                "it may have been delivered",
                settings,
            )
        ) from error
    if 200 <= code < 300:
        return
    if 400 <= code < 600:
        raise EmailNotSent(
            _redacted(f"{where} refused the message: {code} {_decode(reply)}", settings),
            permanent=_is_permanent(code),
            smtp_code=code,
        )
    raise EmailOutcomeUnknown(
        _redacted(
            f"{where} replied {code} {_decode(reply)!r} after the message data; "
            "it may have been delivered",
            settings,
        )
    )


_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


_END_OF_DATA = b".\r\n"


def _data_payload(message: EmailMessage, international: bool) -> bytes:
    """The message as SMTP DATA: CRLF lines, leading dots doubled; the lone dot that ends it
    (``_END_OF_DATA``) is sent on its own."""
    flattened = message.as_bytes(policy=policy.SMTPUTF8 if international else policy.SMTP)
    lines = _LINE_ENDING.sub(b"\r\n", flattened)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    return _LEADING_DOT.sub(b"..", lines)


def _expect(
    response: tuple[int, bytes], expected: int, settings: SmtpSettings, context: str
) -> None:
    code, reply = response
    if code != expected:
        raise EmailNotSent(
            _redacted(f"{context}: {code} {_decode(reply)}", settings),
            permanent=_is_permanent(code),
            smtp_code=code,
        )


def _refused(
    settings: SmtpSettings, context: str, error: smtplib.SMTPResponseException
) -> EmailNotSent:
    return EmailNotSent(
        _redacted(f"{context}: {error.smtp_code} {_decode(error.smtp_error)}", settings),
        permanent=_is_permanent(error.smtp_code),
        smtp_code=error.smtp_code,
    )


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _redacted(text: str, settings: SmtpSettings) -> str:
    """A server may echo what it was sent; the password must not reach logs or dead letters."""
    if settings.password:
        return text.replace(settings.password, "[redacted]")
    return text


def _close(connection: smtplib.SMTP) -> None:
    """QUIT politely when the session is still usable; the outcome is already decided."""
    try:
        if connection.sock is not None:
            connection.quit()
    except OSError:
        pass
    finally:
        connection.close()
