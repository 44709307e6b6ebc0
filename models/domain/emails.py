"""The "points earned" email, rendered from package templates (loaded once, at import).

Rendering is kept apart from sending so the text can be tested on its own, and so the task can
store the Message-ID before it hands the message to SMTP: the Message-ID is derived from the
transaction, which makes a duplicate recognisable wherever it lands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
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
    message = EmailMessage()
    _set_single_address(message, "From", email.sender)
    _set_single_address(message, "To", email.recipient)
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at or datetime.now(UTC))
    message["Message-ID"] = points_earned_message_id(email.transaction_id)
    # RFC 3834: tells vacation responders and the like not to answer.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_TEXT.render(context))
    message.add_alternative(_HTML.render(context), subtype="html")
    return message
