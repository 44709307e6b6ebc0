"""The Postscript client against the fake Postscript over HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from tests.support.fakes import FakePostscript
from tests.workers.outbound.providers import (
    API_KEY,
    EXPIRES_AT,
    CountingThrottle,
    adjustment,
    assert_key_hidden,
    customer,
    elapsed_since,
)
from workers.outbound.providers.base import (
    POINTS_EXPIRED,
    POINTS_EXPIRING_SOON,
    PermanentProviderError,
    TransientProviderError,
)
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.providers.postscript import PostscriptProvider

PHONE = "+15555550100"
EMAIL = "ann@example.com"
EXPECTED_PROPERTIES = {
    "loyalty_points_balance": 170,
    "loyalty_lifetime_points": 950,
    "loyalty_vip_tier": "Gold",
    "loyalty_last_activity_at": "2025-01-02T03:04:05Z",
    "loyalty_revision": 7,
    "loyalty_points_expiring": 120,
    "loyalty_points_expiration_date": "2025-02-01T00:00:00Z",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakePostscript]:
    with FakePostscript(api_keys={API_KEY}) as fake:
        yield fake


@pytest.fixture
def fake(server: FakePostscript) -> FakePostscript:
    server.reset()
    return server


@pytest.fixture
def postscript(fake: FakePostscript) -> Iterator[PostscriptProvider]:
    provider = PostscriptProvider.from_settings(
        ProviderSettings(base_urls={"postscript": fake.base_url}, http_timeout=0.5)
    )
    yield provider
    provider.close()


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_the_subscriber_is_found_by_phone_and_patched_by_id(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    subscriber_id = fake.add_subscriber(phone=PHONE, properties={"shoe_size": 9})
    throttle = CountingThrottle()

    outcome = postscript.sync(API_KEY, customer(), push_profile=True, event=None, throttle=throttle)

    assert outcome == "synced"
    lookup, patch = fake.requests
    assert (lookup.method, lookup.path, lookup.status) == ("GET", "/api/v2/subscribers", 200)
    assert lookup.query == {"phone_number__eq": PHONE}  # the "+" arrived, percent-encoded
    assert (patch.method, patch.path, patch.status) == (
        "PATCH",
        f"/api/v2/subscribers/{subscriber_id}",
        200,
    )
    assert patch.json == {"properties": EXPECTED_PROPERTIES}
    for request in fake.requests:
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    subscriber = fake.subscriber(subscriber_id)
    assert subscriber is not None
    assert subscriber["properties"] == {"shoe_size": 9, **EXPECTED_PROPERTIES}
    assert throttle.calls == len(fake.requests) == 2


def test_the_email_is_tried_when_the_phone_finds_no_subscriber(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    subscriber_id = fake.add_subscriber(phone="+15555550199", email=EMAIL)

    postscript.sync(API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle())

    assert [r.query for r in fake.requests_to("GET", "/api/v2/subscribers")] == [
        {"phone_number__eq": PHONE},
        {"email__eq": EMAIL},
    ]
    assert fake.requests[-1].path == f"/api/v2/subscribers/{subscriber_id}"
    subscriber = fake.subscriber(subscriber_id)
    assert subscriber is not None
    assert subscriber["properties"] == EXPECTED_PROPERTIES


def test_a_customer_with_no_subscriber_is_skipped_and_never_opted_in(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    fake.add_subscriber(phone="+15555550199")

    outcome = postscript.sync(
        API_KEY, customer(), push_profile=True, event=adjustment(), throttle=CountingThrottle()
    )

    assert outcome == "skipped: no postscript subscriber"
    assert [r.method for r in fake.requests] == ["GET", "GET"]
    assert len(fake.subscribers) == 1
    assert fake.events == []


def test_a_customer_with_neither_phone_nor_email_is_skipped_without_a_request(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    outcome = postscript.sync(
        API_KEY,
        customer(phone=None, email=None),
        push_profile=True,
        event=adjustment(),
        throttle=CountingThrottle(),
    )

    assert outcome == "skipped: no phone or email"
    assert fake.requests == []


def test_the_event_names_the_subscriber_and_the_transaction(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    subscriber_id = fake.add_subscriber(phone=PHONE)
    throttle = CountingThrottle()

    outcome = postscript.sync(
        API_KEY, customer(), push_profile=False, event=adjustment(), throttle=throttle
    )

    assert outcome == "synced"
    assert [r.method for r in fake.requests] == ["GET", "POST"]  # no PATCH without a profile
    event = fake.requests[-1]
    assert (event.path, event.status) == ("/api/v2/events", 202)
    assert event.json == {
        "type": "LoyaltyPointsAdjusted",
        "subscriber_id": subscriber_id,
        "occurred_at": "2025-01-02 03:04:05.678901",
        "external_id": "tx-1001",
        "properties": {
            "points": 50,
            "new_balance": 170,
            "lifetime_points": 950,
            "vip_tier": "Gold",
            "reason": "order #1001",
        },
    }
    [recorded] = fake.events
    assert recorded["resolved_subscriber_id"] == subscriber_id
    assert throttle.calls == 2


def test_a_retried_sync_sends_the_same_external_id(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    fake.add_subscriber(phone=PHONE)
    fake.fail_next(1, status=503)  # the lookup of the first attempt

    with pytest.raises(TransientProviderError):
        postscript.sync(
            API_KEY, customer(), push_profile=True, event=adjustment(), throttle=CountingThrottle()
        )
    postscript.sync(
        API_KEY, customer(), push_profile=True, event=adjustment(), throttle=CountingThrottle()
    )
    postscript.sync(
        API_KEY, customer(), push_profile=True, event=adjustment(), throttle=CountingThrottle()
    )

    assert [e["external_id"] for e in fake.events] == ["tx-1001", "tx-1001"]
    assert [r.status for r in fake.requests] == [503, 200, 200, 202, 200, 200, 202]


def test_429_is_transient_with_no_retry_after_because_postscript_gives_none(
    fake: FakePostscript, postscript: PostscriptProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_subscriber(phone=PHONE)
    fake.fail_next(1, status=429)

    with pytest.raises(TransientProviderError) as caught:
        postscript.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == 429
    assert caught.value.retry_after is None
    assert "Rate limit exceeded" in str(caught.value)
    assert fake.requests[0].reply_headers == {}  # no Retry-After, as Postscript does
    assert_key_hidden(caught.value, caplog)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(
    fake: FakePostscript, postscript: PostscriptProvider, status: int
) -> None:
    fake.add_subscriber(phone=PHONE)
    fake.fail_always(status)

    with pytest.raises(TransientProviderError) as caught:
        postscript.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == status
    assert len(fake.requests) == 1


def test_a_hanging_postscript_is_transient_within_the_timeout(
    fake: FakePostscript, postscript: PostscriptProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_subscriber(phone=PHONE)
    fake.hang_next(1, seconds=5)
    started = time.monotonic()

    with pytest.raises(TransientProviderError) as caught:
        postscript.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert elapsed_since(started) < 3
    assert "ReadTimeout" in str(caught.value)
    assert_key_hidden(caught.value, caplog)


def test_a_wrong_key_is_permanent_and_never_echoed(
    fake: FakePostscript, postscript: PostscriptProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_subscriber(phone=PHONE)

    with pytest.raises(PermanentProviderError) as caught:
        postscript.sync(
            API_KEY[::-1], customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == 401
    assert "Invalid API key" in str(caught.value)
    assert API_KEY[::-1] not in str(caught.value)
    assert_key_hidden(caught.value, caplog)


def test_a_payload_postscript_rejects_is_permanent(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    # 48 properties already: five more would pass Postscript's limit of 50.
    subscriber_id = fake.add_subscriber(
        phone=PHONE, properties={f"other_{n}": "x" for n in range(48)}
    )

    with pytest.raises(PermanentProviderError) as caught:
        postscript.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == 400
    assert "50 custom properties" in str(caught.value)
    subscriber = fake.subscriber(subscriber_id)
    assert subscriber is not None
    assert "loyalty_points_balance" not in subscriber["properties"]


def test_a_lost_tier_is_cleared_and_a_missing_activity_time_left_out(
    fake: FakePostscript, postscript: PostscriptProvider
) -> None:
    subscriber_id = fake.add_subscriber(phone=PHONE, properties={"loyalty_vip_tier": "Gold"})

    postscript.sync(
        API_KEY,
        customer(tier=None, last_activity_at=None),
        push_profile=True,
        event=adjustment(tier=None, note=None),
        throttle=CountingThrottle(),
    )

    patch = fake.requests_to("PATCH", f"/api/v2/subscribers/{subscriber_id}")[0]
    assert patch.json["properties"]["loyalty_vip_tier"] == ""
    assert "loyalty_last_activity_at" not in patch.json["properties"]
    event = fake.requests_to("POST", "/api/v2/events")[0]
    assert set(event.json["properties"]) == {"points", "new_balance", "lifetime_points"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (POINTS_EXPIRED, "LoyaltyPointsExpired"),
        (POINTS_EXPIRING_SOON, "LoyaltyPointsExpiringSoon"),
    ],
)
def test_expiry_events_are_named_in_postscripts_style(
    fake: FakePostscript, postscript: PostscriptProvider, name: str, expected: str
) -> None:
    fake.add_subscriber(phone=PHONE)
    event = adjustment(name=name, points=-40, expires_at=EXPIRES_AT)

    postscript.sync(API_KEY, customer(), push_profile=False, event=event, throttle=lambda: None)

    sent = fake.requests[-1].json
    assert sent["type"] == expected
    assert sent["properties"]["expiration_date"] == "2025-02-01T00:00:00Z"
