"""The two ways sending can fail, and how an SMTP reply or a lost connection becomes one of them
without the password in its message."""

from __future__ import annotations

import smtplib

from workers.outbound.mailer.settings import SmtpSettings


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


def expect(
    response: tuple[int, bytes], expected: int, settings: SmtpSettings, context: str
) -> None:
    """Raise ``EmailNotSent`` unless the reply has the ``expected`` code."""
    code, reply = response
    if code != expected:
        raise refusal(settings, context, code, reply)


def refused(
    settings: SmtpSettings, context: str, error: smtplib.SMTPResponseException
) -> EmailNotSent:
    return refusal(settings, context, error.smtp_code, error.smtp_error)


def refusal(settings: SmtpSettings, context: str, code: int, reply: bytes | str) -> EmailNotSent:
    """The server answered ``code``: for certain not sent, for good when the code is a 5xx."""
    return EmailNotSent(
        redacted(f"{context}: {code} {decode(reply)}", settings),
        permanent=is_permanent(code),
        smtp_code=code,
    )


def not_sent(
    settings: SmtpSettings, context: str, error: BaseException, *, permanent: bool
) -> EmailNotSent:
    """No reply to go by (a lost connection, a missing capability): ``context: error``."""
    return EmailNotSent(redacted(f"{context}: {describe(error)}", settings), permanent=permanent)


def is_permanent(code: int) -> bool:
    return 500 <= code < 600


def decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def redacted(text: str, settings: SmtpSettings) -> str:
    """A server may echo what it was sent; the password must not reach logs or dead letters."""
    if settings.password:
        return text.replace(settings.password, "[redacted]")
    return text
