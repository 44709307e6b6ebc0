"""The result every command returns and the database keeps: Mage's shape under ``data``, Wix's
account shape under ``account``. Each builder constructs its shape (``shapes``); the planner turns
it into JSON (``as_json``) where it leaves the domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from models.domain.adjustments import Adjustment, Points
from models.domain.commands import UpsertCustomer
from models.domain.errors import Rejection, idempotency_conflict
from models.domain.expiry import Expiration
from models.domain.results.shapes import (
    APPLIED,
    FAILED,
    INTERNAL_ERROR,
    REJECTED,
    Account,
    AdjustmentApplied,
    AdjustmentAttributes,
    AdjustmentData,
    CommandFailed,
    CommandRejected,
    Customer,
    CustomerUpserted,
    Error,
    InternalError,
    PointsBreakdown,
    PointsExpiration,
    ResultJSON,
    ReversalApplied,
    ReversalAttributes,
    ReversalData,
    Tier,
    as_json,
    iso_milliseconds,
)
from models.domain.reversals import Reversal


class StoredCustomer(Protocol):
    """The customer's record after an upsert (the planner's working account)."""

    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    excluded: bool


def timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else iso_milliseconds(moment)


def account_view(
    customer_id: str,
    points: Points,
    tier: tuple[str, int] | None,
    last_activity_at: datetime | None,
    expiration: Expiration | None = None,
) -> Account:
    return Account(
        customer_id=customer_id,
        points=PointsBreakdown(
            balance=points.balance,
            earned=points.earned,
            redeemed=points.redeemed,
            adjusted=points.adjusted,
            expired=points.expired,
        ),
        lifetime_points=points.lifetime,
        tier=None if tier is None else Tier(name=tier[0], threshold=tier[1]),
        revision=points.revision,
        last_activity_at=last_activity_at,
        points_expiration=None
        if expiration is None
        else PointsExpiration(
            expiration_date=expiration.expires_at, expiring_points_amount=expiration.points
        ),
    )


def applied(
    *,
    shop_id: str,
    command_id: str,
    customer_id: str,
    transaction_id: uuid.UUID,
    adjustment: Adjustment,
    note: str | None,
    account: Account,
) -> AdjustmentApplied:
    return AdjustmentApplied(
        status=APPLIED,
        command_id=command_id,
        shop_id=shop_id,
        transaction_id=transaction_id,
        data=AdjustmentData(
            type="points_adjustment",
            id=transaction_id,
            attributes=AdjustmentAttributes(
                customer_id=customer_id,
                adjustment=adjustment.requested,
                applied_adjustment=adjustment.applied,
                points_before=adjustment.before.balance,
                points_after=adjustment.after.balance,
                current_points=adjustment.after.balance,
                note=note,
            ),
        ),
        account=account,
    )


def reversal_applied(
    *,
    shop_id: str,
    command_id: str,
    customer_id: str,
    transaction_id: uuid.UUID,
    reverses_transaction_id: uuid.UUID,
    reversal: Reversal,
    note: str | None,
    account: Account,
) -> ReversalApplied:
    adjustment = reversal.adjustment
    return ReversalApplied(
        status=APPLIED,
        command_id=command_id,
        shop_id=shop_id,
        transaction_id=transaction_id,
        data=ReversalData(
            type="points_reversal",
            id=transaction_id,
            attributes=ReversalAttributes(
                customer_id=customer_id,
                reverses_transaction_id=reverses_transaction_id,
                adjustment=adjustment.requested,
                applied_adjustment=adjustment.applied,
                points_before=adjustment.before.balance,
                points_after=adjustment.after.balance,
                current_points=adjustment.after.balance,
                remaining_reversible=reversal.remaining,
                note=note,
            ),
        ),
        account=account,
    )


def replayed(
    shop_id: str, command_id: str, stored_result: ResultJSON, *, same_payload: bool
) -> tuple[ResultJSON, bool]:
    """A command id seen before: its stored result for the same payload, else an
    ``idempotency_conflict`` (then True: record it as a refused attempt, the key stays claimed).
    The stored result is returned as it was stored, never rebuilt."""
    if same_payload:
        return stored_result, False
    conflict = idempotency_conflict(command_id, stored_result["status"])
    return as_json(rejected(shop_id, command_id, conflict)), True


def rejected(shop_id: str | None, command_id: str | None, rejection: Rejection) -> CommandRejected:
    return CommandRejected(
        status=REJECTED,
        command_id=command_id,
        shop_id=shop_id,
        error=Error(
            code=rejection.code,
            http_status=rejection.code.http_status,
            message=rejection.message,
            details=rejection.details,
        ),
    )


def failed(shop_id: str | None, command_id: str | None, reason: str) -> CommandFailed:
    """A command that raised a bug instead of being decided: kept with the refused messages,
    under no idempotency key, so it can be sent again once the bug is fixed."""
    return CommandFailed(
        status=FAILED,
        command_id=command_id,
        shop_id=shop_id,
        error=InternalError(code=INTERNAL_ERROR, http_status=500, message=reason, details={}),
    )


def customer_upserted(
    command: UpsertCustomer, customer: StoredCustomer, *, created: bool
) -> CustomerUpserted:
    return CustomerUpserted(
        status=APPLIED,
        command_id=command.command_id,
        shop_id=command.shop_id,
        created=created,
        customer=Customer(
            customer_id=command.customer_id,
            email=customer.email,
            phone=customer.phone,
            first_name=customer.first_name,
            last_name=customer.last_name,
            excluded=customer.excluded,
        ),
    )
