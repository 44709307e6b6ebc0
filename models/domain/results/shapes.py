"""The shapes of a result, defined once: the builders construct them, ``as_json`` gives the JSON
that is stored and returned, and ``schemas/command_result.json`` is generated from them.

They are plain slotted dataclasses that pydantic describes (schema, validation, JSON), not
``BaseModel``: one is built for every command on the hot path, and a dataclass is built in a
fraction of a model's time. The builders' arguments are checked by mypy; ``command_result``
validates a result read back (the tests run every real result through it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self

from pydantic import ConfigDict, PlainSerializer, TypeAdapter, model_validator

from models.domain.errors import ErrorCode

APPLIED: Final = "applied"
REJECTED: Final = "rejected"
FAILED: Final = "failed"
INTERNAL_ERROR: Final = "internal_error"
"""The code of a command that raised a bug; not a rejection: sent again, it may apply."""


def iso_milliseconds(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(iso_milliseconds, when_used="json")]
"""A moment, in JSON to the millisecond, UTC written ``Z``."""


class _Shape:
    """Results are JSON: every key is always present (null when empty), no other key is."""

    __slots__ = ()
    __pydantic_config__ = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


@dataclass(slots=True, kw_only=True)
class Tier(_Shape):
    name: str
    threshold: int
    """Lifetime points from which the tier applies."""


@dataclass(slots=True, kw_only=True)
class PointsBreakdown(_Shape):
    balance: int
    earned: int
    redeemed: int
    adjusted: int
    """Net of every adjustment."""
    expired: int
    """Expired by the shop's expiry policy; ``balance = earned - redeemed + adjusted -
    expired``."""


@dataclass(slots=True, kw_only=True)
class PointsExpiration(_Shape):
    """Wix's ``pointsExpiration``."""

    expiration_date: Timestamp
    """The next moment points expire (a UTC midnight)."""
    expiring_points_amount: int
    """How many points expire then."""


@dataclass(slots=True, kw_only=True)
class Account(_Shape):
    """The account after the command (Wix's shape)."""

    customer_id: str
    points: PointsBreakdown
    lifetime_points: int
    tier: Tier | None
    """The tier held when the command committed (a recalculation follows)."""
    revision: int
    """Counts points changes; ``expected_revision`` is compared with it."""
    last_activity_at: Timestamp | None
    points_expiration: PointsExpiration | None
    """Null when no points will expire (the shop has no expiry policy, or the balance is 0)."""


@dataclass(slots=True, kw_only=True)
class AdjustmentAttributes(_Shape):
    customer_id: str
    adjustment: int
    """The delta asked for (for a ``balance`` command: the new balance minus the old)."""
    applied_adjustment: int
    """What really moved, after any floor at zero."""
    points_before: int
    points_after: int
    current_points: int
    note: str | None


@dataclass(slots=True, kw_only=True)
class AdjustmentData(_Shape):
    """Mage's shape."""

    type: Literal["points_adjustment"]
    id: uuid.UUID
    """The transaction id."""
    attributes: AdjustmentAttributes


@dataclass(slots=True, kw_only=True)
class AdjustmentApplied(_Shape):
    """An applied ``loyalty.adjust_points`` command."""

    status: Literal["applied"]
    command_id: str
    shop_id: str
    transaction_id: uuid.UUID
    data: AdjustmentData
    account: Account


@dataclass(slots=True, kw_only=True)
class ReversalAttributes(_Shape):
    customer_id: str
    reverses_transaction_id: uuid.UUID
    """The transaction this reversal undoes (part of)."""
    adjustment: int
    """The delta asked for: minus the points clawed back, or plus the points credited back."""
    applied_adjustment: int
    """What really moved, after any floor at zero."""
    points_before: int
    points_after: int
    current_points: int
    remaining_reversible: int
    """Points of the reversed transaction that later reversals may still undo."""
    note: str | None


@dataclass(slots=True, kw_only=True)
class ReversalData(_Shape):
    """Mage's shape, for a reversal."""

    type: Literal["points_reversal"]
    id: uuid.UUID
    """The reversal's own transaction id."""
    attributes: ReversalAttributes


@dataclass(slots=True, kw_only=True)
class ReversalApplied(_Shape):
    """An applied ``loyalty.reverse_adjustment`` command."""

    status: Literal["applied"]
    command_id: str
    shop_id: str
    transaction_id: uuid.UUID
    data: ReversalData
    account: Account


@dataclass(slots=True, kw_only=True)
class Customer(_Shape):
    """The customer as stored after the upsert."""

    customer_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    excluded: bool


@dataclass(slots=True, kw_only=True)
class CustomerUpserted(_Shape):
    """An applied ``loyalty.upsert_customer`` command."""

    status: Literal["applied"]
    command_id: str
    shop_id: str
    created: bool
    """False when the customer existed and was updated."""
    customer: Customer


@dataclass(slots=True, kw_only=True)
class Error(_Shape):
    code: ErrorCode
    http_status: int
    """The HTTP status the code stands for (400, 403, 404, 409 or 422)."""
    message: str
    details: dict[str, Any]
    """For ``invalid_command``: ``errors``, a list of ``{field, reason}``."""

    @model_validator(mode="after")
    def _status_of_the_code(self) -> Self:
        if self.http_status != self.code.http_status:
            raise ValueError(f"{self.code} is HTTP {self.code.http_status}, not {self.http_status}")
        return self


@dataclass(slots=True, kw_only=True)
class CommandRejected(_Shape):
    """A refused command, final: it is never retried. ``shop_id`` and ``command_id`` are null
    when an invalid message had no usable ones."""

    status: Literal["rejected"]
    command_id: str | None
    shop_id: str | None
    error: Error


@dataclass(slots=True, kw_only=True)
class InternalError(_Shape):
    code: Literal["internal_error"]
    http_status: Literal[500]
    message: str
    """The exception raised."""
    details: dict[str, Any]


@dataclass(slots=True, kw_only=True)
class CommandFailed(_Shape):
    """A command that raised a bug instead of being decided: kept with the refused messages,
    under no idempotency key, so it can be sent again once the bug is fixed. Not a result a
    publisher receives, so not in ``schemas/``."""

    status: Literal["failed"]
    command_id: str | None
    shop_id: str | None
    error: InternalError


CommandResult = AdjustmentApplied | ReversalApplied | CustomerUpserted | CommandRejected
command_result: TypeAdapter[CommandResult] = TypeAdapter(CommandResult)
"""Validates a result (``command_result.validate_json``); its JSON Schema is ``schemas/``'s."""

ResultJSON = dict[str, Any]
"""A result as it leaves the domain (stored, returned by a task): ``as_json`` of a shape, or a
result stored earlier and replayed as it was."""

_SERIALIZERS: dict[type[_Shape], TypeAdapter[Any]] = {
    shape: TypeAdapter(shape)
    for shape in (
        AdjustmentApplied,
        ReversalApplied,
        CustomerUpserted,
        CommandRejected,
        CommandFailed,
        Account,
    )
}


def as_json(result: CommandResult | CommandFailed | Account) -> ResultJSON:
    """The JSON the result is stored and returned as: uuids as strings, moments as ``Timestamp``."""
    dumped: ResultJSON = _SERIALIZERS[type(result)].dump_python(result, mode="json")
    return dumped
