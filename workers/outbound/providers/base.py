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
from datetime import datetime
from typing import Generic, TypeVar


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
    points_expiring: int = 0
    """The points of the next lot to expire (0 when none will)."""
    points_expiration_date: datetime | None = None


POINTS_ADJUSTED = "Loyalty Points Adjusted"
POINTS_EXPIRED = "Loyalty Points Expired"
POINTS_EXPIRING_SOON = "Loyalty Points Expiring Soon"
"""The events, named once in Title Case; each provider writes them in its own style
(``omnisend``: lower case, ``postscript``: CamelCase)."""


@dataclass(frozen=True, slots=True)
class PointsEvent:
    """One points change, or a reminder; ``transaction_id`` is the provider-side idempotency
    key (the reminder's id for a reminder)."""

    transaction_id: str
    points: int
    balance_after: int
    lifetime_after: int
    tier: str | None
    note: str | None
    occurred_at: datetime
    name: str = POINTS_ADJUSTED
    expires_at: datetime | None = None
    """For "expiring soon": when the points expire."""


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


# ---------------------------------------------------------------------------------------------
# Helpers the clients share (added with the clients; nothing above depends on them).

T = TypeVar("T")


def redact(text: str, secret: str) -> str:
    """Provider error text is echoed into our messages; make sure the key never rides along."""
    if secret:
        text = text.replace(secret, "***")
    return text


def describe_failure(exc: BaseException, secret: str) -> str:
    """``ConnectError: …``: what went wrong on the way, without the key, kept short."""
    return f"{type(exc).__name__}: {redact(str(exc), secret)[:300]}"


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
