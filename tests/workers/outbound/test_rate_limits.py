"""The shared rate limiter on the test Redis (db 9): one budget across processes and threads."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.support import environment
from workers.outbound import rate_limits
from workers.outbound.providers.base import RateLimited, TransientProviderError
from workers.outbound.rate_limits import RateLimiter, rate_limiter
from workers.settings import settings

REDIS_URL = environment.redis_url(9)
# Timestamps are taken after a throttle returns, a little after the limiter stamped the hit.
SLACK = 0.1

MakeLimiter = Callable[..., RateLimiter]


@pytest.fixture
def make_limiter() -> Iterator[MakeLimiter]:
    """RateLimiter, closed after the test so no Redis connection outlives it."""
    made: list[RateLimiter] = []

    def make(storage_uri: str, limits: dict[str, str], **options: float) -> RateLimiter:
        made.append(RateLimiter(storage_uri, limits, **options))
        return made[-1]

    yield make
    for limiter in made:
        limiter.close()


def unique_key() -> str:
    return f"shop-{uuid.uuid4().hex[:12]}"


def hammer(
    storage_uri: str, key: str, threads: int, start_at: float, stop_at: float
) -> list[float]:
    """One worker process: ``threads`` threads taking slots as fast as they are given."""
    limiter = RateLimiter(storage_uri, {"postscript": "5/second"}, max_total_wait=1.0)
    throttle = limiter.throttle_for("postscript", key)
    granted: list[float] = []
    lock = threading.Lock()

    def take_slots() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            try:
                throttle()
            except RateLimited as wait:
                time.sleep(min(wait.retry_after or 0.05, max(0.0, stop_at - time.time())))
                continue
            with lock:
                granted.append(time.time())

    workers = [threading.Thread(target=take_slots) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    limiter.close()
    return granted


def assert_at_most_per_second(times: list[float], allowed: int) -> None:
    times = sorted(times)
    for first, later in zip(times, times[allowed:], strict=False):
        assert later - first >= 1.0 - SLACK, f"{allowed + 1} slots within {later - first:.3f}s"


def test_processes_and_threads_share_one_budget_on_redis() -> None:
    key = unique_key()
    start_at = time.time() + 1.5  # time for the spawned interpreters to start
    stop_at = start_at + 2.0
    context = multiprocessing.get_context("spawn")

    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        futures = [pool.submit(hammer, REDIS_URL, key, 3, start_at, stop_at) for _ in range(3)]
        per_process = [future.result(timeout=30) for future in futures]

    granted = [moment for times in per_process for moment in times]
    assert_at_most_per_second(granted, 5)
    assert 8 <= len(granted) <= 5 * 4  # the budget was used, and not exceeded overall
    assert sum(1 for times in per_process if times) >= 2  # more than one process got slots


def test_threads_in_one_process_share_the_budget(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(REDIS_URL, {"klaviyo": "5/second"}, max_total_wait=1.0)
    throttle = limiter.throttle_for("klaviyo", unique_key())
    granted: list[float] = []
    lock = threading.Lock()
    stop_at = time.time() + 1.5

    def take_slots() -> None:
        while time.time() < stop_at:
            try:
                throttle()
            except RateLimited as wait:
                time.sleep(min(wait.retry_after or 0.05, 0.2))
                continue
            with lock:
                granted.append(time.time())

    workers = [threading.Thread(target=take_slots) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert_at_most_per_second(granted, 5)
    assert len(granted) >= 8


def test_a_short_wait_is_slept_through(make_limiter: MakeLimiter) -> None:
    throttle = make_limiter(REDIS_URL, {"postscript": "2/second"}).throttle_for(
        "postscript", unique_key()
    )
    throttle()
    throttle()
    started = time.monotonic()

    throttle()

    assert 0.5 <= time.monotonic() - started <= 1.8


def test_a_long_wait_raises_with_the_time_until_a_slot_frees(make_limiter: MakeLimiter) -> None:
    throttle = make_limiter(REDIS_URL, {"omnisend": "2/10 seconds"}).throttle_for(
        "omnisend", unique_key()
    )
    throttle()
    throttle()
    started = time.monotonic()

    with pytest.raises(RateLimited) as caught:
        throttle()

    assert time.monotonic() - started < 0.5  # raised at once rather than blocking the worker
    assert isinstance(caught.value, TransientProviderError)
    assert caught.value.retry_after is not None
    assert 8.5 <= caught.value.retry_after <= 10.1
    assert "omnisend" in str(caught.value)


def test_every_window_must_hold(make_limiter: MakeLimiter) -> None:
    throttle = make_limiter(REDIS_URL, {"klaviyo": "10/second;4/minute"}).throttle_for(
        "klaviyo", unique_key()
    )
    for _ in range(4):
        throttle()  # the per-second window has room for all four

    with pytest.raises(RateLimited) as caught:
        throttle()

    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 60.1


def test_each_credential_has_its_own_budget(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(REDIS_URL, {"postscript": "1/minute"})
    shop_a, shop_b = unique_key(), unique_key()
    limiter.throttle_for("postscript", shop_a)()

    with pytest.raises(RateLimited):
        limiter.throttle_for("postscript", shop_a)()
    limiter.throttle_for("postscript", shop_b)()


def test_providers_have_separate_budgets_for_the_same_shop(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(REDIS_URL, {"postscript": "1/minute", "omnisend": "1/minute"})
    shop = unique_key()
    limiter.throttle_for("postscript", shop)()

    limiter.throttle_for("omnisend", shop)()

    with pytest.raises(RateLimited):
        limiter.throttle_for("omnisend", shop)()


def test_clear_forgets_the_history(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(REDIS_URL, {"postscript": "1/minute"})
    shop = unique_key()
    limiter.throttle_for("postscript", shop)()

    limiter.clear("postscript", shop)

    limiter.throttle_for("postscript", shop)()


def test_memory_storage_limits_within_the_process(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter("memory://", {"omnisend": "2/10 seconds"})
    throttle = limiter.throttle_for("omnisend", unique_key())
    throttle()
    throttle()

    with pytest.raises(RateLimited) as caught:
        throttle()

    assert caught.value.retry_after is not None
    assert 8.5 <= caught.value.retry_after <= 10.1


def test_an_unreachable_store_is_transient_but_not_a_rate_limit(make_limiter: MakeLimiter) -> None:
    throttle = make_limiter("redis://127.0.0.1:1/9", {"klaviyo": "5/second"}).throttle_for(
        "klaviyo", unique_key()
    )

    with pytest.raises(TransientProviderError) as caught:
        throttle()

    assert not isinstance(caught.value, RateLimited)
    assert "storage unavailable" in str(caught.value)


def test_an_unknown_provider_is_refused_up_front(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter("memory://", {"klaviyo": "5/second"})

    with pytest.raises(ValueError, match="no rate limit configured"):
        limiter.throttle_for("mailchimp", "shop-1")


def test_the_process_wide_limiter_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rate_limits, "_shared", None)
    monkeypatch.setenv("LOYALTY_RATE_LIMIT_STORAGE", "memory://")
    monkeypatch.setenv("LOYALTY_POSTSCRIPT_RATE_LIMIT", "1/minute")

    limiter = rate_limiter(settings().providers)

    assert rate_limiter(settings().providers) is limiter
    assert limiter.storage_uri == "memory://"
    throttle = limiter.throttle_for("postscript", unique_key())
    throttle()
    with pytest.raises(RateLimited):
        throttle()
