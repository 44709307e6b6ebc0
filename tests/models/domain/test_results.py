"""The results' JSON, key for key: what the database keeps and the tasks return must not change
when the shapes are refactored. Every key is always present, null when empty."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from models.domain import results
from models.domain.adjustments import Adjustment, Points
from models.domain.commands import InvalidCommand, UpsertCustomer
from models.domain.errors import customer_not_found, unknown_shop
from models.domain.expiry import Expiration

TRANSACTION = uuid.UUID("0b6f2c1e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")
NOW = datetime(2025, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
AFTER = Points(balance=0, lifetime=150, earned=150, redeemed=0, adjusted=-150, revision=4)


@dataclass
class StoredCustomer:
    email: str | None = "ada@example.com"
    phone: str | None = None
    first_name: str | None = "Ada"
    last_name: str | None = None
    excluded: bool = False


def exactly(result: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal, and in the same key order (the JSON text is what is stored)."""
    assert json.dumps(result) == json.dumps(expected)


def test_an_applied_adjustment() -> None:
    adjustment = Adjustment(requested=-200, applied=-150, before=Points(balance=150), after=AFTER)
    account = results.account_view("ada", AFTER, ("Gold", 100), NOW)

    result = results.applied(
        shop_id="coffee-co",
        command_id="c-1",
        customer_id="ada",
        transaction_id=TRANSACTION,
        adjustment=adjustment,
        note=None,
        account=account,
    )

    exactly(
        results.as_json(result),
        {
            "status": "applied",
            "command_id": "c-1",
            "shop_id": "coffee-co",
            "transaction_id": str(TRANSACTION),
            "data": {
                "type": "points_adjustment",
                "id": str(TRANSACTION),
                "attributes": {
                    "customer_id": "ada",
                    "adjustment": -200,
                    "applied_adjustment": -150,
                    "points_before": 150,
                    "points_after": 0,
                    "current_points": 0,
                    "note": None,
                },
            },
            "account": {
                "customer_id": "ada",
                "points": {
                    "balance": 0,
                    "earned": 150,
                    "redeemed": 0,
                    "adjusted": -150,
                    "expired": 0,
                },
                "lifetime_points": 150,
                "tier": {"name": "Gold", "threshold": 100},
                "revision": 4,
                "last_activity_at": "2025-03-04T05:06:07.891Z",
                "points_expiration": None,
            },
        },
    )


def test_an_account_without_tier_or_activity_keeps_its_keys_as_null() -> None:
    account = results.as_json(results.account_view("bo", Points(), None, None))

    assert account["tier"] is None
    assert account["last_activity_at"] is None


def test_an_account_with_points_to_expire_says_when_and_how_many() -> None:
    expiration = Expiration(datetime(2025, 4, 1, tzinfo=UTC), 120)
    points = Points(balance=300, adjusted=350, expired=50)

    account = results.as_json(results.account_view("ada", points, None, NOW, expiration))

    assert account["points"]["expired"] == 50
    assert account["points_expiration"] == {
        "expiration_date": "2025-04-01T00:00:00.000Z",
        "expiring_points_amount": 120,
    }


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (None, None),
        (datetime(2025, 1, 1, tzinfo=UTC), "2025-01-01T00:00:00.000Z"),
        (NOW, "2025-03-04T05:06:07.891Z"),
        (NOW.astimezone(timezone(timedelta(hours=2))), "2025-03-04T07:06:07.891+02:00"),
    ],
)
def test_a_moment_is_written_to_the_millisecond(moment: datetime | None, text: str | None) -> None:
    assert results.timestamp(moment) == text
    account = results.as_json(results.account_view("ada", AFTER, None, moment))
    assert account["last_activity_at"] == text


def test_a_customer_upserted() -> None:
    command = UpsertCustomer.model_validate(
        {"command_id": "u-1", "shop_id": "coffee-co", "customer_id": "ada"}
    )

    result = results.customer_upserted(command, StoredCustomer(), created=True)

    exactly(
        results.as_json(result),
        {
            "status": "applied",
            "command_id": "u-1",
            "shop_id": "coffee-co",
            "created": True,
            "customer": {
                "customer_id": "ada",
                "email": "ada@example.com",
                "phone": None,
                "first_name": "Ada",
                "last_name": None,
                "excluded": False,
            },
        },
    )


def test_a_rejection() -> None:
    result = results.rejected("coffee-co", "c-1", customer_not_found("coffee-co", "nobody"))

    exactly(
        results.as_json(result),
        {
            "status": "rejected",
            "command_id": "c-1",
            "shop_id": "coffee-co",
            "error": {
                "code": "customer_not_found",
                "http_status": 404,
                "message": "customer 'nobody' not found in shop 'coffee-co'",
                "details": {"customer_id": "nobody"},
            },
        },
    )


def test_an_invalid_message_without_keys_is_rejected_with_null_keys() -> None:
    invalid = InvalidCommand([{"field": "command", "reason": "must be a JSON object"}])

    result = results.as_json(results.rejected(None, None, invalid.rejection()))

    assert result["command_id"] is None
    assert result["shop_id"] is None
    assert result["error"]["details"] == {
        "errors": [{"field": "command", "reason": "must be a JSON object"}]
    }


def test_a_failure() -> None:
    result = results.failed("coffee-co", None, "KeyError: 'x'")

    exactly(
        results.as_json(result),
        {
            "status": "failed",
            "command_id": None,
            "shop_id": "coffee-co",
            "error": {
                "code": "internal_error",
                "http_status": 500,
                "message": "KeyError: 'x'",
                "details": {},
            },
        },
    )


def test_a_replay_returns_the_stored_result_as_it_was_stored() -> None:
    stored = {"status": "applied", "kept": "as stored, even in an older shape"}

    assert results.replayed("s", "c-1", stored, same_payload=True) == (stored, False)


def test_a_replay_of_another_payload_is_an_idempotency_conflict() -> None:
    stored = results.as_json(results.rejected("s", "c-1", unknown_shop("s")))

    result, conflict = results.replayed("s", "c-1", stored, same_payload=False)

    assert conflict is True
    assert result["error"]["code"] == "idempotency_conflict"
    assert result["error"]["details"] == {"command_id": "c-1", "original_status": "rejected"}


def test_the_json_reads_back_as_the_same_shape() -> None:
    built = [
        results.rejected("s", "c-1", unknown_shop("s")),
        results.customer_upserted(
            UpsertCustomer.model_validate({"command_id": "u", "shop_id": "s", "customer_id": "a"}),
            StoredCustomer(),
            created=False,
        ),
        results.applied(
            shop_id="s",
            command_id="c-2",
            customer_id="a",
            transaction_id=TRANSACTION,
            adjustment=Adjustment(requested=5, applied=5, before=Points(), after=AFTER),
            note="Goodwill",
            account=results.account_view("a", AFTER, None, NOW.replace(microsecond=891000)),
        ),
    ]

    for result in built:
        assert results.command_result.validate_json(json.dumps(results.as_json(result))) == result
