"""The constrained values a command's fields are made of: identifiers, notes, names, contact
details, transaction ids and the bounds of an amount. Each refuses what would be stored wrong or
displayed misleadingly, with a reason that names the rule."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

ID_LENGTH = 128
"""Characters of a shop, customer, command id, source or actor (the columns are this wide)."""
MAX_ADJUSTMENT = 9_999_999
MAX_BALANCE = 999_999_999
MAX_NOTE_LENGTH = 500

# Unicode categories Cc (controls) and Cs (surrogates), less newline and tab.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _no_control_characters(value: str) -> str:
    found = _CONTROL_CHARACTER.search(value)
    if found:
        raise ValueError(f"must not contain control characters (found U+{ord(found[0]):04X})")
    return value


# Explicit bidirectional embeddings, overrides and isolates: in an id or a name they reorder how
# the text around them is displayed, so "cust-1<RLO>gnp.exe" reads as another customer's id.
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def _no_bidi_controls(value: str) -> str:
    found = _BIDI_CONTROL.search(value)
    if found:
        raise ValueError(
            f"must not contain bidirectional control characters (found U+{ord(found[0]):04X})"
        )
    return value


def _no_surrounding_whitespace(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_LENGTH),
    AfterValidator(_no_control_characters),
    AfterValidator(_no_bidi_controls),
    AfterValidator(_no_surrounding_whitespace),
]
Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NOTE_LENGTH),
    AfterValidator(_no_control_characters),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control_characters),
    AfterValidator(_no_bidi_controls),
    AfterValidator(_no_surrounding_whitespace),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()./-]{4,32}$")]


def _canonical_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a transaction id (a UUID)") from None


TransactionId = Annotated[str, StringConstraints(max_length=64), AfterValidator(_canonical_uuid)]
"""A transaction id as a result gave it; any spelling of the same UUID is the same id."""
