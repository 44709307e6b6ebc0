"""What a message becomes on the wire: its envelope (one sender, its To and Cc recipients) and
its DATA payload, the lone dot that ends it kept apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses

_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)

END_OF_DATA = b".\r\n"


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: list[str]

    @property
    def international(self) -> bool:
        """A non-ASCII address needs the server's SMTPUTF8."""
        return not all(address.isascii() for address in (self.sender, *self.recipients))


def envelope_of(message: EmailMessage) -> Envelope:
    """From the From, To and Cc headers; ``ValueError`` without one sender or any recipient."""
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
    return Envelope(senders[0], recipients)


def data_payload(message: EmailMessage, international: bool) -> bytes:
    """The message as SMTP DATA: CRLF lines, leading dots doubled; the lone dot that ends it
    (``END_OF_DATA``) is sent on its own."""
    flattened = message.as_bytes(policy=policy.SMTPUTF8 if international else policy.SMTP)
    lines = _LINE_ENDING.sub(b"\r\n", flattened)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    return _LEADING_DOT.sub(b"..", lines)
