"""The "points earned" and "points expiring soon" emails, rendered from package templates (loaded
once, at import).

Rendering is kept apart from sending so the text can be tested on its own, and so the task can
store the Message-ID before it hands the message to SMTP: the Message-ID is derived from the
transaction, which makes a duplicate recognisable wherever it lands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

MESSAGE_ID_DOMAIN = "loyalty.invalid"
"""Reserved by RFC 2606, so these ids can never collide with a real domain's."""

# RFC 5322 dot-atom text: what a Message-ID's left part may hold without quoting. Anything else
# (spaces, angle brackets, line breaks) could break or inject headers.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@dataclass(frozen=True, slots=True)
class PointsEarnedEmail:
    """Everything the email says. Shop and customer names are untrusted text."""

    transaction_id: str
    shop_name: str
    sender: str
    recipient: str
    first_name: str | None
    points: int
    balance: int
    lifetime_points: int
    tier: str | None

    def __post_init__(self) -> None:
        if self.points <= 0:
            raise ValueError(f"points must be positive, got {self.points}")
        _check_transaction_id(self.transaction_id)


def _check_transaction_id(transaction_id: str) -> None:
    if not _DOT_ATOM.fullmatch(transaction_id):
        raise ValueError(f"transaction_id cannot go in a Message-ID: {transaction_id!r}")


def _points(number: int) -> str:
    return f"{number:,} point" if abs(number) == 1 else f"{number:,} points"


_templates = Environment(
    loader=PackageLoader("models.domain", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_templates.filters["points"] = _points
_TEXT = _templates.get_template("points_earned.txt")
_HTML = _templates.get_template("points_earned.html")
_EXPIRING_TEXT = _templates.get_template("points_expiring.txt")
_EXPIRING_HTML = _templates.get_template("points_expiring.html")


def points_earned_message_id(transaction_id: str) -> str:
    """The same transaction always yields the same id, so a resend is recognisable.

    Short enough that, with a UUID, the header line stays within 78 characters: a folded
    Message-ID reads back with a leading space in Python's email parser.
    """
    _check_transaction_id(transaction_id)
    return f"<earned.{transaction_id}@{MESSAGE_ID_DOMAIN}>"


def _one_line(text: str) -> str:
    """Header values must not break lines; untrusted names could otherwise inject headers."""
    return " ".join(text.split())


def _present(text: str | None) -> str | None:
    """Blank optional text reads as absent, so the email never says "Hi ," or "Tier: "."""
    if text is None:
        return None
    return _one_line(text) or None


def _set_single_address(message: EmailMessage, header: str, value: str) -> None:
    message[header] = value
    addresses: tuple[Address, ...] = message[header].addresses
    if len(addresses) != 1 or "@" not in addresses[0].addr_spec:
        raise ValueError(f"{header} must be exactly one email address, got {value!r}")


def render_points_earned(
    email: PointsEarnedEmail, *, sent_at: datetime | None = None
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML preferred) ready for SMTP.

    ``sent_at`` fixes the Date header (tests); by default it is now, in UTC.
    """
    shop_name = _one_line(email.shop_name)
    subject = f"You earned {_points(email.points)} at {shop_name}"
    context = {
        "subject": subject,
        "shop_name": shop_name,
        "first_name": _present(email.first_name),
        "points": email.points,
        "balance": email.balance,
        "lifetime_points": email.lifetime_points,
        "tier": _present(email.tier),
    }
    return _message(
        (email.sender, email.recipient),
        subject,
        points_earned_message_id(email.transaction_id),
        (_TEXT.render(context), _HTML.render(context)),
        sent_at,
    )


@dataclass(frozen=True, slots=True)
class PointsExpiringEmail:
    """The reminder that points expire soon; one per account and expiry moment."""

    reminder_id: str
    shop_name: str
    sender: str
    recipient: str
    first_name: str | None
    points: int
    expires_at: datetime
    balance: int

    def __post_init__(self) -> None:
        if self.points <= 0:
            raise ValueError(f"points must be positive, got {self.points}")
        _check_transaction_id(self.reminder_id)


def render_points_expiring(
    email: PointsExpiringEmail, *, sent_at: datetime | None = None
) -> EmailMessage:
    """As ``render_points_earned``; the expiry moment is shown as the last day the points can
    be used (the UTC midnight they expire at ends it)."""
    shop_name = _one_line(email.shop_name)
    day = (email.expires_at.astimezone(UTC) - timedelta(seconds=1)).date()
    last_day = f"{day:%B} {day.day}, {day.year}"
    subject = f"{_points(email.points)} at {shop_name} expire after {last_day}"
    context = {
        "subject": subject,
        "shop_name": shop_name,
        "first_name": _present(email.first_name),
        "points": email.points,
        "last_day": last_day,
        "balance": email.balance,
    }
    return _message(
        (email.sender, email.recipient),
        subject,
        f"<expiring.{email.reminder_id}@{MESSAGE_ID_DOMAIN}>",
        (_EXPIRING_TEXT.render(context), _EXPIRING_HTML.render(context)),
        sent_at,
    )


def _message(
    addresses: tuple[str, str],
    subject: str,
    message_id: str,
    bodies: tuple[str, str],
    sent_at: datetime | None,
) -> EmailMessage:
    sender, recipient = addresses
    message = EmailMessage()
    _set_single_address(message, "From", sender)
    _set_single_address(message, "To", recipient)
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at or datetime.now(UTC))
    message["Message-ID"] = message_id
    # RFC 3834: tells vacation responders and the like not to answer.
    message["Auto-Submitted"] = "auto-generated"
    text, html = bodies
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
