"""The Klaviyo client, through the real SDK, against the fake Klaviyo over HTTP."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pydantic
import pytest
from openapi_client.models.profile_upsert_query import ProfileUpsertQuery

from tests.support.fakes import FakeKlaviyo
from tests.workers.outbound.providers import (
    API_KEY,
    EXPIRES_AT,
    CountingThrottle,
    adjustment,
    assert_key_hidden,
    customer,
    elapsed_since,
)
from workers.outbound.providers import base
from workers.outbound.providers.base import (
    POINTS_EXPIRED,
    POINTS_EXPIRING_SOON,
    PermanentProviderError,
    RateLimited,
    TransientProviderError,
)
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.providers.klaviyo import KlaviyoProvider, classify

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
def server() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo(api_keys={API_KEY}) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeKlaviyo) -> FakeKlaviyo:
    server.reset()
    return server


@pytest.fixture
def klaviyo(fake: FakeKlaviyo) -> Iterator[KlaviyoProvider]:
    provider = KlaviyoProvider.from_settings(
        ProviderSettings(base_urls={"klaviyo": fake.base_url}, http_timeout=0.5)
    )
    yield provider
    provider.close()


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # so a key in any library's log line would be caught


def test_profile_push_sends_the_absolute_state_with_the_sdk_headers(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    outcome = klaviyo.sync(
        API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
    )

    assert outcome == "synced"
    [request] = fake.requests
    assert (request.method, request.path, request.status) == ("POST", "/api/profile-import", 201)
    assert request.headers["Authorization"] == f"Klaviyo-API-Key {API_KEY}"
    assert request.headers["revision"] == "2026-10-15"
    assert request.json == {
        "data": {
            "type": "profile",
            "attributes": {
                "external_id": "cust-42",
                "email": "ann@example.com",
                "phone_number": "+15555550100",
                "first_name": "Ann",
                "last_name": "Lee",
                "properties": EXPECTED_PROPERTIES,
            },
        }
    }
    profile = fake.profile("cust-42")
    assert profile is not None
    assert profile["properties"] == EXPECTED_PROPERTIES
    assert profile["email"] == "ann@example.com"


def test_a_later_push_updates_the_same_profile_and_clears_a_lost_tier(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    throttle = CountingThrottle()
    klaviyo.sync(API_KEY, customer(), push_profile=True, event=None, throttle=throttle)
    klaviyo.sync(
        API_KEY,
        customer(balance=20, tier=None, revision=8),
        push_profile=True,
        event=None,
        throttle=throttle,
    )

    assert [r.status for r in fake.requests] == [201, 200]
    assert fake.requests[1].json["data"]["attributes"]["properties"]["loyalty_vip_tier"] is None
    [profile] = fake.profiles
    assert profile["properties"]["loyalty_points_balance"] == 20
    assert profile["properties"]["loyalty_revision"] == 8
    assert "loyalty_vip_tier" not in profile["properties"]


def test_a_customer_without_email_or_phone_is_identified_by_the_customer_id(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    state = customer(email=None, phone=None, first_name=None, last_name=None)

    klaviyo.sync(API_KEY, state, push_profile=True, event=adjustment(), throttle=CountingThrottle())

    attributes = fake.requests[0].json["data"]["attributes"]
    assert set(attributes) == {"external_id", "properties"}
    event_profile = fake.requests[1].json["data"]["attributes"]["profile"]["data"]["attributes"]
    assert event_profile == {"external_id": "cust-42"}
    assert len(fake.profiles) == 1


def test_the_event_carries_the_adjustment_keyed_by_its_transaction_id(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    throttle = CountingThrottle()

    outcome = klaviyo.sync(
        API_KEY, customer(), push_profile=False, event=adjustment(), throttle=throttle
    )

    assert outcome == "synced"
    [request] = fake.requests
    assert (request.method, request.path, request.status) == ("POST", "/api/events", 202)
    assert request.headers["revision"] == "2026-10-15"
    attributes = request.json["data"]["attributes"]
    assert request.json["data"]["type"] == "event"
    assert attributes["unique_id"] == "tx-1001"
    assert attributes["time"] == "2025-01-02T03:04:05.678901+00:00"
    assert attributes["value"] == 50
    assert attributes["properties"] == {
        "points": 50,
        "new_balance": 170,
        "lifetime_points": 950,
        "vip_tier": "Gold",
        "reason": "order #1001",
    }
    assert attributes["metric"] == {
        "data": {"type": "metric", "attributes": {"name": "Loyalty Points Adjusted"}}
    }
    assert attributes["profile"] == {
        "data": {
            "type": "profile",
            "attributes": {
                "external_id": "cust-42",
                "email": "ann@example.com",
                "phone_number": "+15555550100",
            },
        }
    }
    [event] = fake.events_for("cust-42")
    assert event["metric"] == "Loyalty Points Adjusted"
    assert event["time"] == "2025-01-02T03:04:05+00:00"


def test_a_retried_event_is_recorded_once(fake: FakeKlaviyo, klaviyo: KlaviyoProvider) -> None:
    throttle = CountingThrottle()
    for _ in range(3):
        klaviyo.sync(API_KEY, customer(), push_profile=True, event=adjustment(), throttle=throttle)

    sent = fake.requests_to("POST", "/api/events")
    assert [r.json["data"]["attributes"]["unique_id"] for r in sent] == ["tx-1001"] * 3
    assert len(fake.events) == 1
    klaviyo.sync(
        API_KEY,
        customer(),
        push_profile=False,
        event=adjustment(transaction_id="tx-1002"),
        throttle=throttle,
    )
    assert [e["unique_id"] for e in fake.events] == ["tx-1001", "tx-1002"]


def test_every_request_asks_the_throttle_first(fake: FakeKlaviyo, klaviyo: KlaviyoProvider) -> None:
    throttle = CountingThrottle()

    klaviyo.sync(API_KEY, customer(), push_profile=True, event=adjustment(), throttle=throttle)

    assert throttle.calls == len(fake.requests) == 2


def test_a_throttle_that_refuses_stops_the_request(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    def refuse() -> None:
        raise RateLimited("rate limit for klaviyo reached", retry_after=4.0)

    with pytest.raises(RateLimited):
        klaviyo.sync(API_KEY, customer(), push_profile=True, event=adjustment(), throttle=refuse)

    assert fake.requests == []


def test_nothing_to_send_makes_no_request(fake: FakeKlaviyo, klaviyo: KlaviyoProvider) -> None:
    throttle = CountingThrottle()

    outcome = klaviyo.sync(API_KEY, customer(), push_profile=False, event=None, throttle=throttle)

    assert outcome == "skipped: nothing to send"
    assert fake.requests == []
    assert throttle.calls == 0


def test_429_is_transient_with_klaviyos_retry_after_and_one_attempt(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(1, status=429, retry_after=7)

    with pytest.raises(TransientProviderError) as caught:
        klaviyo.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert not isinstance(caught.value, RateLimited)
    [request] = fake.requests  # the SDK did not sleep and retry on its own
    assert request.status == 429
    assert request.reply_headers == {"Retry-After": "7"}
    assert_key_hidden(caught.value, caplog)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient_after_a_single_attempt(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider, status: int
) -> None:
    fake.fail_next(1, status=status)

    with pytest.raises(TransientProviderError) as caught:
        klaviyo.sync(
            API_KEY, customer(), push_profile=False, event=adjustment(), throttle=CountingThrottle()
        )

    assert caught.value.status == status
    assert [r.status for r in fake.requests] == [status]
    assert fake.events == []


def test_a_hanging_klaviyo_is_transient_within_the_timeout(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.hang_next(1, seconds=5)
    started = time.monotonic()

    with pytest.raises(TransientProviderError) as caught:
        klaviyo.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert elapsed_since(started) < 3  # 0.5 s read timeout, plenty of slack
    assert "ReadTimeoutError" in str(caught.value)
    assert len(fake.requests) == 1
    assert_key_hidden(caught.value, caplog)


def test_an_unreachable_klaviyo_is_transient(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    klaviyo = KlaviyoProvider(f"http://127.0.0.1:{port}", timeout=0.5)

    with pytest.raises(TransientProviderError) as caught:
        klaviyo.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )
    klaviyo.close()

    assert "MaxRetryError" in str(caught.value)
    assert_key_hidden(caught.value, caplog)


def test_a_wrong_key_is_permanent_and_never_echoed(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.api_keys.discard(API_KEY)
    try:
        with pytest.raises(PermanentProviderError) as caught:
            klaviyo.sync(
                API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
            )
    finally:
        fake.api_keys.add(API_KEY)

    assert caught.value.status == 401
    assert "Missing or invalid private key" in str(caught.value)
    assert fake.requests[0].status == 401
    assert_key_hidden(caught.value, caplog)


def test_a_payload_klaviyo_rejects_is_permanent(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        klaviyo.sync(
            API_KEY,
            customer(phone="555-0100"),
            push_profile=True,
            event=None,
            throttle=CountingThrottle(),
        )

    assert caught.value.status == 400
    assert "phone number" in str(caught.value)
    assert fake.profiles == []


def test_identifiers_of_two_profiles_are_a_permanent_conflict(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    fake.add_profile(external_id="cust-42")
    fake.add_profile(email="ann@example.com")

    with pytest.raises(PermanentProviderError) as caught:
        klaviyo.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == 409


def test_a_payload_the_sdk_rejects_before_sending_is_permanent() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ProfileUpsertQuery.model_validate({"data": {"type": "profile", "attributes": 5}})

    error = classify(caught.value, API_KEY)

    assert isinstance(error, PermanentProviderError)
    assert "data.attributes" in str(error)


def test_one_sdk_client_per_key_per_process(
    klaviyo: KlaviyoProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = klaviyo._session(API_KEY)
    assert klaviyo._session(API_KEY) is first
    assert klaviyo._session("another-key") is not first

    monkeypatch.setattr(
        base, "os", SimpleNamespace(getpid=lambda: -1)
    )  # as if in a freshly forked child

    assert klaviyo._session(API_KEY) is not first
    klaviyo.close()
    first.sdk.api_client.rest_client.pool_manager.clear()


def test_expiry_events_are_metrics_of_their_own(
    fake: FakeKlaviyo, klaviyo: KlaviyoProvider
) -> None:
    for number, name in enumerate((POINTS_EXPIRING_SOON, POINTS_EXPIRED)):
        event = adjustment(transaction_id=f"tx-{number}", name=name, expires_at=EXPIRES_AT)
        klaviyo.sync(API_KEY, customer(), push_profile=False, event=event, throttle=lambda: None)

    assert [e["metric"] for e in fake.events_for("cust-42")] == [
        "Loyalty Points Expiring Soon",
        "Loyalty Points Expired",
    ]
