"""One request budget per provider credential, shared by every worker process.

Providers count requests per account, not per process: eight prefork children each keeping
their own count would send eight times the allowed rate and collect 429s. The counts live in
Redis (the ``limits`` library's moving window, updated atomically by a Lua script), so all
processes draw from one budget. ``memory://`` keeps a per-process budget for runs with no Redis.

A throttle that finds the budget spent waits when the next slot is close (at most
``max_sleep`` per wait); otherwise it raises ``RateLimited`` (a ``TransientProviderError``: a
wait for our own budget, not a provider fault) carrying the wait, so the task gives its worker
slot back and retries later instead of blocking it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping

import redis
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from workers.outbound.providers.base import (
    PerProcess,
    RateLimited,
    Throttle,
    TransientProviderError,
)
from workers.outbound.providers.config import ProviderSettings

NAMESPACE = "loyalty-provider"
# Sleeping to the exact edge of the window can find the oldest hit still inside it.
WAKE_MARGIN = 0.005


class RateLimiter:
    def __init__(
        self,
        storage_uri: str,
        limits_by_provider: Mapping[str, str],
        *,
        max_sleep: float = 1.0,
        max_total_wait: float = 5.0,
    ) -> None:
        self.storage_uri = storage_uri
        self.max_sleep = max_sleep
        self.max_total_wait = max_total_wait
        # Shortest window first: when a later window refuses, the hit already taken from the
        # shorter one is wasted for the shortest possible time.
        self._limits: dict[str, list[RateLimitItem]] = {
            provider: sorted(parse_many(spec), key=lambda item: item.get_expiry())
            for provider, spec in limits_by_provider.items()
        }
        # Redis connections (and the memory store's timer thread) must not cross a fork.
        self._limiter: PerProcess[MovingWindowRateLimiter] = PerProcess(self._build_limiter)

    def throttle_for(self, provider: str, key: str) -> Throttle:
        """The throttle for one credential (``key``, e.g. the shop id) of ``provider``."""
        if provider not in self._limits:
            raise ValueError(f"no rate limit configured for provider {provider!r}")

        def throttle() -> None:
            self.acquire(provider, key)

        return throttle

    def acquire(self, provider: str, key: str) -> None:
        """Take one request from every window of the budget, or raise RateLimited."""
        items = self._limits[provider]
        limiter = self._limiter.get()
        waited = 0.0
        try:
            while True:
                wait = self._wait_for_free_slot(limiter, items, provider, key)
                if wait <= 0:
                    if self._hit_all(limiter, items, provider, key):
                        return
                    # Another process took the slot between the check and the hit.
                    time.sleep(WAKE_MARGIN)
                    waited += WAKE_MARGIN
                    continue
                if wait > self.max_sleep or waited + wait > self.max_total_wait:
                    raise RateLimited(
                        f"rate limit for {provider} reached; next slot in {wait:.2f}s",
                        retry_after=math.ceil(wait * 100) / 100,
                    )
                time.sleep(wait + WAKE_MARGIN)
                waited += wait + WAKE_MARGIN
        except StorageError as exc:
            raise TransientProviderError(
                f"rate limit storage unavailable: {type(exc.storage_error).__name__}"
            ) from None

    def close(self) -> None:
        """Close this process's connection to the store (a later throttle reconnects)."""
        limiter = self._limiter.take()
        if limiter is not None and isinstance(limiter.storage, RedisStorage):
            connection = limiter.storage.get_connection()
            if isinstance(connection, redis.Redis):
                connection.close()

    def clear(self, provider: str, key: str) -> None:
        """Forget the budget's history (tests, or after changing a shop's key)."""
        limiter = self._limiter.get()
        for item in self._limits[provider]:
            limiter.clear(item, NAMESPACE, provider, key)

    @staticmethod
    def _wait_for_free_slot(
        limiter: MovingWindowRateLimiter, items: list[RateLimitItem], provider: str, key: str
    ) -> float:
        """Seconds until every window has room; 0 or less when all have room now."""
        wait = 0.0
        for item in items:
            stats = limiter.get_window_stats(item, NAMESPACE, provider, key)
            if stats.remaining <= 0:
                wait = max(wait, stats.reset_time - time.time())
        return wait

    @staticmethod
    def _hit_all(
        limiter: MovingWindowRateLimiter, items: list[RateLimitItem], provider: str, key: str
    ) -> bool:
        return all(limiter.hit(item, NAMESPACE, provider, key) for item in items)

    def _build_limiter(self) -> MovingWindowRateLimiter:
        storage = storage_from_string(self.storage_uri, wrap_exceptions=True)
        if not isinstance(storage, Storage):  # an "async+…" scheme
            raise ValueError(f"rate limit storage must be synchronous: {storage.STORAGE_SCHEME}")
        return MovingWindowRateLimiter(storage)


_lock = threading.Lock()
_shared: RateLimiter | None = None


def rate_limiter(settings: ProviderSettings) -> RateLimiter:
    """The process-wide limiter, from ``settings`` on first use (it reconnects after fork)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = RateLimiter(settings.rate_limit_storage, settings.rate_limits)
        return _shared
