"""The wire contract: what an upstream service may publish, validated once at the edge.

Validation is strict (JSON integers only, no coercion from strings, floats or booleans) and unknown
fields are refused rather than ignored, so a typo never silently changes what a command does.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from models.domain.errors import ErrorCode, Rejection
from models.domain.fields import (
    MAX_ADJUSTMENT,
    MAX_BALANCE,
    Email,
    Identifier,
    Name,
    Note,
    Phone,
    TransactionId,
)

# Command types, as recorded with each result.
ADJUST_POINTS = "adjust_points"
UPSERT_CUSTOMER = "upsert_customer"
REVERSE_ADJUSTMENT = "reverse_adjustment"


class _Command(BaseModel):
    # Attribute docstrings become the JSON Schema's descriptions (models/domain/schemas.py).
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True
    )

    command_id: Identifier
    """Idempotency key, unique per shop: the same command again returns the stored result."""
    shop_id: Identifier
    """The tenant; every lookup is scoped by it."""

    def payload_hash(self) -> str:
        """Same meaning, same hash: aliases, key order, note padding and spelled-out defaults do
        not change it, and neither does a later release adding an optional field."""
        canonical = json.dumps(
            self.model_dump(mode="json", exclude_defaults=True),
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class AdjustPoints(_Command):
    """Add or deduct points (``adjustment``), or set the balance (``balance``, which wins)."""

    # _delta_or_balance, as the JSON Schema says it: a non-null adjustment, amount or balance.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "integer"}}}
                for name in ("adjustment", "amount", "balance")
            ]
        }
    )

    customer_id: Identifier
    """The shop's own customer id."""
    adjustment: Annotated[int, Field(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)] | None = Field(
        default=None,
        validation_alias=AliasChoices("adjustment", "amount"),
        json_schema_extra={"not": {"const": 0}},
    )
    """Signed delta, non-zero (alias ``amount``); ``adjustment`` or ``balance`` is required."""
    balance: Annotated[int, Field(ge=0, le=MAX_BALANCE)] | None = None
    """Set the balance to this value; wins when an adjustment is given too."""
    note: Note | None = Field(default=None, validation_alias=AliasChoices("note", "description"))
    """Stored on the audit entry (alias ``description``); 1..500 characters after trimming."""
    update_lifetime_points: bool = True
    """Lifetime points move by the applied delta too (never below 0)."""
    lifetime_points: Annotated[int, Field(ge=0, le=MAX_BALANCE)] | None = None
    """Set lifetime points to this value instead (migrations); wins over update_lifetime_points."""
    send_email: bool = True
    """Send the points-earned email for an increase, when the customer has an email."""
    expected_revision: Annotated[int, Field(ge=0)] | None = None
    """Refuse with ``revision_conflict`` unless the account is at this revision."""
    on_insufficient_points: Literal["floor", "reject"] = "floor"
    """A deduction below zero: ``floor`` the balance at 0 (Mage) or ``reject`` it (Wix)."""
    source: Identifier | None = None
    """The sending system, for the audit entry."""
    actor: Identifier | None = None
    """Who asked for it, for the audit entry."""

    @model_validator(mode="after")
    def _delta_or_balance(self) -> AdjustPoints:
        if self.adjustment == 0:
            raise _FieldError("adjustment", "must not be zero")
        if self.adjustment is None and self.balance is None:
            raise _FieldError("adjustment", "one of adjustment (or amount) or balance is required")
        return self


class UpsertCustomer(_Command):
    """Create a customer or update the given fields; absent fields keep their stored value."""

    customer_id: Identifier
    """The shop's own customer id."""
    email: Email | None = None
    """Where the points-earned emails go."""
    phone: Phone | None = None
    """Used by SMS providers (Postscript) to find the subscriber."""
    first_name: Name | None = None
    last_name: Name | None = None
    excluded: bool | None = None
    """An excluded customer keeps the balance; every adjustment is refused until included."""


class ReverseAdjustment(_Command):
    """Undo (part of) an applied adjustment: claw back an increase, credit back a deduction."""

    customer_id: Identifier
    """The customer the reversed transaction belongs to."""
    transaction_id: TransactionId
    """The applied adjustment to reverse: the ``transaction_id`` of its result."""
    points: Annotated[int, Field(ge=1, le=MAX_ADJUSTMENT)] | None = None
    """How many of its points to reverse; everything still reversible when absent."""
    note: Note | None = Field(default=None, validation_alias=AliasChoices("note", "description"))
    """Stored on the audit entry (alias ``description``); 1..500 characters after trimming."""
    on_insufficient_points: Literal["floor", "reject"] = "floor"
    """A claw-back below zero: ``floor`` the balance at 0 or ``reject`` it."""
    source: Identifier | None = None
    """The sending system, for the audit entry."""
    actor: Identifier | None = None
    """Who asked for it, for the audit entry."""


class _FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class InvalidCommand(Exception):
    """The message is not a valid command; ``errors`` names each bad field and why."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))

    def rejection(self) -> Rejection:
        return Rejection(
            ErrorCode.INVALID_COMMAND, f"invalid command: {self}", {"errors": self.errors}
        )


Command = AdjustPoints | UpsertCustomer | ReverseAdjustment

COMMAND_MODELS: dict[str, type[Command]] = {
    ADJUST_POINTS: AdjustPoints,
    UPSERT_CUSTOMER: UpsertCustomer,
    REVERSE_ADJUSTMENT: ReverseAdjustment,
}
"""Every command type, by the name its results, its task (``loyalty.<type>``) and a bulk chunk's
items carry. A new command is its model and its entry here, and its rule in the planner: its
task, queue, route, parsing and JSON Schema follow from this table."""

CommandT = TypeVar("CommandT", bound=_Command)

_ALIASES = {"amount": "adjustment", "description": "note"}


def parse_command(model: type[CommandT], payload: Any) -> CommandT:
    if not isinstance(payload, dict):
        raise InvalidCommand([{"field": "command", "reason": "must be a JSON object"}])
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidCommand([_describe(error) for error in exc.errors()]) from None


def _describe(error: ErrorDetails) -> dict[str, str]:
    field = ".".join(str(part) for part in error["loc"]) or "command"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, _FieldError):
        return {"field": cause.field, "reason": cause.reason}
    reason = {
        "missing": "is required",
        "int_type": "must be a JSON integer",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "string_too_short": "must not be empty",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "string_pattern_mismatch": f"is not a valid {field.replace('_', ' ')}",
    }.get(kind)
    if kind == "extra_forbidden":
        reason = (
            f"is an alias of {_ALIASES[field]}; give only one of them"
            if field in _ALIASES
            else "is not a known field"
        )
    if reason is None:
        message = str(cause) if cause is not None else error["msg"]
        reason = message[0].lower() + message[1:]
    return {"field": field, "reason": reason}


_KEY_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


def salvage_key(payload: Any) -> tuple[str | None, str | None]:
    """The shop and command id of an invalid message, where they are usable, for its record."""
    if not isinstance(payload, dict):
        return None, None
    shop_id, command_id = payload.get("shop_id"), payload.get("command_id")
    return (
        shop_id if isinstance(shop_id, str) and _KEY_RE.match(shop_id) else None,
        command_id if isinstance(command_id, str) and _KEY_RE.match(command_id) else None,
    )
