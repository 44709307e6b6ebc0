"""The result object every command returns and the database keeps: Mage's shape under ``data``,
Wix's account shape under ``account``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from models.domain.adjustments import Adjustment, Points
from models.domain.commands import UpsertCustomer
from models.domain.errors import Rejection, idempotency_conflict

APPLIED = "applied"
REJECTED = "rejected"
FAILED = "failed"
INTERNAL_ERROR = "internal_error"
"""The code of a command that raised a bug; not a rejection: sent again, it may apply."""


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def account_view(
    customer_id: str,
    points: Points,
    tier: tuple[str, int] | None,
    last_activity_at: datetime | None,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "points": {
            "balance": points.balance,
            "earned": points.earned,
            "redeemed": points.redeemed,
            "adjusted": points.adjusted,
        },
        "lifetime_points": points.lifetime,
        "tier": None if tier is None else {"name": tier[0], "threshold": tier[1]},
        "revision": points.revision,
        "last_activity_at": timestamp(last_activity_at),
    }


def applied(
    *,
    shop_id: str,
    command_id: str,
    customer_id: str,
    transaction_id: uuid.UUID,
    adjustment: Adjustment,
    note: str | None,
    account: dict[str, Any],
) -> dict[str, Any]:
    return {
        "status": APPLIED,
        "command_id": command_id,
        "shop_id": shop_id,
        "transaction_id": str(transaction_id),
        "data": {
            "type": "points_adjustment",
            "id": str(transaction_id),
            "attributes": {
                "customer_id": customer_id,
                "adjustment": adjustment.requested,
                "applied_adjustment": adjustment.applied,
                "points_before": adjustment.before.balance,
                "points_after": adjustment.after.balance,
                "current_points": adjustment.after.balance,
                "note": note,
            },
        },
        "account": account,
    }


def replayed(
    shop_id: str, command_id: str, stored_result: dict[str, Any], *, same_payload: bool
) -> tuple[dict[str, Any], bool]:
    """A command id seen before: its stored result for the same payload, else an
    ``idempotency_conflict`` (then True: record it as a refused attempt, the key stays claimed)."""
    if same_payload:
        return stored_result, False
    conflict = idempotency_conflict(command_id, stored_result["status"])
    return rejected(shop_id, command_id, conflict), True


def rejected(shop_id: str | None, command_id: str | None, rejection: Rejection) -> dict[str, Any]:
    return {
        "status": REJECTED,
        "command_id": command_id,
        "shop_id": shop_id,
        "error": rejection.as_error(),
    }


def failed(shop_id: str | None, command_id: str | None, reason: str) -> dict[str, Any]:
    """A command that raised a bug instead of being decided: kept with the refused messages,
    under no idempotency key, so it can be sent again once the bug is fixed."""
    return {
        "status": FAILED,
        "command_id": command_id,
        "shop_id": shop_id,
        "error": {"code": INTERNAL_ERROR, "http_status": 500, "message": reason, "details": {}},
    }


def customer_upserted(command: UpsertCustomer, customer: Any, *, created: bool) -> dict[str, Any]:
    """``customer`` is the stored record after the upsert (any object with the fields)."""
    return {
        "status": APPLIED,
        "command_id": command.command_id,
        "shop_id": command.shop_id,
        "created": created,
        "customer": {
            "customer_id": command.customer_id,
            "email": customer.email,
            "phone": customer.phone,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "excluded": customer.excluded,
        },
    }
