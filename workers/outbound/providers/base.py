"""What every provider client shares: the state it pushes, the event it sends, and how a failure
says whether trying again can help.

A sync always pushes absolute values (the account as it is now), never deltas, so pushing the same
state twice is harmless and a later push simply wins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class CustomerState:
    """The account as the provider should see it."""

    shop_id: str
    customer_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    balance: int
    lifetime_points: int
    tier: str | None
    revision: int
    last_activity_at: datetime | None


@dataclass(frozen=True, slots=True)
class PointsEvent:
    """One applied adjustment; ``transaction_id`` is the provider-side idempotency key."""

    transaction_id: str
    points: int
    balance_after: int
    lifetime_after: int
    tier: str | None
    note: str | None
    occurred_at: datetime


class ProviderError(Exception):
    """A provider call failed. The message never contains credentials."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientProviderError(ProviderError):
    """Worth trying again later: connection errors, timeouts, 429, 5xx, or our own rate limit.
    ``retry_after`` is the provider's (or the limiter's) wait in seconds, when it gave one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimited(TransientProviderError):
    """Our own shared rate limit has no slot free: a wait, not a failure of the provider."""


class PermanentProviderError(ProviderError):
    """Trying again cannot help (4xx other than 429: bad key, bad payload…)."""


# Called before every HTTP request a provider makes; it blocks briefly or raises
# TransientProviderError(retry_after=…) when the shared rate limit is exhausted.
Throttle = Callable[[], None]


class Provider(Protocol):
    name: str  # "klaviyo" | "omnisend" | "postscript"

    def sync(
        self,
        api_key: str,
        state: CustomerState,
        *,
        push_profile: bool,
        event: PointsEvent | None,
        throttle: Throttle,
    ) -> str:
        """Push the profile (when ``push_profile``) and send the event (when given).

        Returns a short outcome for the audit: "synced", or "skipped: <reason>" when the provider
        has no contact to update and must not create one (Postscript never opts anyone in).
        Raises TransientProviderError or PermanentProviderError.
        """
        ...


# ---------------------------------------------------------------------------------------------
# Helpers the three clients share (added with the clients; nothing above depends on them).

T = TypeVar("T")


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes from the database are UTC; providers need an explicit offset."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """``2025-01-01T12:00:00Z``: the form every provider documents and parses."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def loyalty_properties(state: CustomerState) -> dict[str, object]:
    """The absolute account state as custom properties; ``None`` means "not set"."""
    return {
        "loyalty_points_balance": state.balance,
        "loyalty_lifetime_points": state.lifetime_points,
        "loyalty_vip_tier": state.tier,
        "loyalty_last_activity_at": (
            iso_utc(state.last_activity_at) if state.last_activity_at is not None else None
        ),
        "loyalty_revision": state.revision,
    }


def event_properties(event: PointsEvent) -> dict[str, object]:
    return {
        "points": event.points,
        "new_balance": event.balance_after,
        "lifetime_points": event.lifetime_after,
        "vip_tier": event.tier,
        "reason": event.note,
    }


def redact(text: str, secret: str) -> str:
    """Provider error text is echoed into our messages; make sure the key never rides along."""
    if secret:
        text = text.replace(secret, "***")
    return text


def seconds_from_header(value: object) -> float | None:
    """A delay in seconds from a header or body field; ``None`` when absent or unreadable
    (HTTP-dates are not worth parsing: the caller falls back to its own backoff)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def error_for_status(
    provider: str, status: int, detail: str, *, retry_after: float | None = None
) -> ProviderError:
    """429 and 5xx are worth retrying; any other 4xx means the request itself is wrong."""
    message = f"{provider} answered HTTP {status}"
    if detail:
        message += f": {detail[:300]}"
    if status == 429 or status >= 500:
        return TransientProviderError(message, status=status, retry_after=retry_after)
    return PermanentProviderError(message, status=status)


class PerProcess(Generic[T]):
    """One lazily built object per process. Connection pools must not cross a fork: a Celery
    prefork child that inherited its parent's sockets would share them with its siblings."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._value: T | None = None

    def get(self) -> T:
        pid = os.getpid()
        with self._lock:
            if self._value is None or self._pid != pid:
                # An object inherited through fork is dropped, never closed: closing it here
                # could shut down a connection the parent is still using.
                self._value = self._build()
                self._pid = pid
            return self._value

    def take(self) -> T | None:
        """Forget this process's object and hand it over (to be closed), if one was built."""
        with self._lock:
            value, self._value = self._value, None
            return value if self._pid == os.getpid() else None
