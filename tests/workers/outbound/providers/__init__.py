"""Builders and checks the provider clients' tests share."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from workers.outbound.providers.base import CustomerState, PointsEvent, ProviderError

# Distinctive enough that finding it anywhere in an error or a log line is a real leak.
API_KEY = "sk_test_9f8e7d6c5b4a-SECRET"
OCCURRED_AT = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
LAST_ACTIVITY_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
EXPIRES_AT = datetime(2025, 2, 1, tzinfo=UTC)


def customer(**overrides: Any) -> CustomerState:
    values: dict[str, Any] = {
        "shop_id": "shop-1",
        "customer_id": "cust-42",
        "email": "ann@example.com",
        "phone": "+15555550100",
        "first_name": "Ann",
        "last_name": "Lee",
        "balance": 170,
        "lifetime_points": 950,
        "tier": "Gold",
        "revision": 7,
        "last_activity_at": LAST_ACTIVITY_AT,
        "points_expiring": 120,
        "points_expiration_date": EXPIRES_AT,
    }
    values.update(overrides)
    return CustomerState(**values)


def adjustment(**overrides: Any) -> PointsEvent:
    values: dict[str, Any] = {
        "transaction_id": "tx-1001",
        "points": 50,
        "balance_after": 170,
        "lifetime_after": 950,
        "tier": "Gold",
        "note": "order #1001",
        "occurred_at": OCCURRED_AT,
    }
    values.update(overrides)
    return PointsEvent(**values)


class CountingThrottle:
    """A throttle that lets everything through and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.calls += 1


def assert_key_hidden(error: ProviderError, caplog: pytest.LogCaptureFixture) -> None:
    """The key is nowhere in the error, whatever it chains to, or the captured log."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for exc in seen:
        assert API_KEY not in str(exc)
        assert API_KEY not in repr(exc)
        assert all(API_KEY not in str(arg) for arg in exc.args)
    assert error.__cause__ is None, "provider errors do not chain the library's exception"
    assert API_KEY not in caplog.text
    assert all(API_KEY not in record.getMessage() for record in caplog.records)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
