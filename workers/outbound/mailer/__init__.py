"""Sends one email over SMTP and, when that fails, says whether the server may have it.

At-most-once delivery hinges on that difference. Until the end of the DATA payload has gone out
the server cannot have accepted the message, so trying again is safe (``EmailNotSent``). Once it
has gone out, a lost or garbled reply leaves the outcome unknown and a resend could deliver the
email twice (``EmailOutcomeUnknown``). ``smtplib.SMTP.send_message`` hides where a failure
happened, so the session is driven one command at a time.

``settings`` reads the ``LOYALTY_SMTP_*`` variables, ``errors`` holds the two outcomes and how a
reply becomes one, ``message`` the envelope and the DATA payload, ``session`` the SMTP commands
up to the message data, and ``delivery`` (``send_email``) the end of data and its verdict.
"""

from workers.outbound.mailer.delivery import HandOver, send_email
from workers.outbound.mailer.errors import EmailDeliveryError, EmailNotSent, EmailOutcomeUnknown
from workers.outbound.mailer.settings import SmtpSettings

__all__ = [
    "EmailDeliveryError",
    "EmailNotSent",
    "EmailOutcomeUnknown",
    "HandOver",
    "SmtpSettings",
    "send_email",
]
