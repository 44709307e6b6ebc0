"""Why a command is refused. A rejection is final: it is recorded and returned, never retried."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID_COMMAND = "invalid_command"
    CUSTOMER_EXCLUDED = "customer_excluded"
    CUSTOMER_NOT_FOUND = "customer_not_found"
    UNKNOWN_SHOP = "unknown_shop"
    REVISION_CONFLICT = "revision_conflict"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    INSUFFICIENT_POINTS = "insufficient_points"
    TRANSACTION_NOT_FOUND = "transaction_not_found"
    NOTHING_TO_REVERSE = "nothing_to_reverse"
    REVERSAL_EXCEEDS_REMAINING = "reversal_exceeds_remaining"
    NOT_REVERSIBLE = "not_reversible"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    ErrorCode.INVALID_COMMAND: 400,
    ErrorCode.CUSTOMER_EXCLUDED: 403,
    ErrorCode.CUSTOMER_NOT_FOUND: 404,
    ErrorCode.UNKNOWN_SHOP: 404,
    ErrorCode.REVISION_CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.INSUFFICIENT_POINTS: 422,
    ErrorCode.TRANSACTION_NOT_FOUND: 404,
    ErrorCode.NOTHING_TO_REVERSE: 409,
    ErrorCode.REVERSAL_EXCEEDS_REMAINING: 422,
    ErrorCode.NOT_REVERSIBLE: 422,
}


@dataclass(frozen=True)
class Rejection:
    code: ErrorCode
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def unknown_shop(shop_id: str) -> Rejection:
    return Rejection(ErrorCode.UNKNOWN_SHOP, f"shop {shop_id!r} not found", {"shop_id": shop_id})


def customer_not_found(shop_id: str, customer_id: str) -> Rejection:
    return Rejection(
        ErrorCode.CUSTOMER_NOT_FOUND,
        f"customer {customer_id!r} not found in shop {shop_id!r}",
        {"customer_id": customer_id},
    )


def idempotency_conflict(command_id: str, original_status: str) -> Rejection:
    return Rejection(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        f"command_id {command_id!r} was already used for a different command",
        {"command_id": command_id, "original_status": original_status},
    )


def transaction_not_found(transaction_id: str, customer_id: str) -> Rejection:
    return Rejection(
        ErrorCode.TRANSACTION_NOT_FOUND,
        f"transaction {transaction_id} is not an applied points change of customer {customer_id!r}",
        {"transaction_id": transaction_id, "customer_id": customer_id},
    )
