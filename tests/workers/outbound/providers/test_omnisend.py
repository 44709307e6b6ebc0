"""The Omnisend client against the fake Omnisend over HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest

from tests.support.fakes import FakeOmnisend
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
    POINTS_EXPIRING_SOON,
    PermanentProviderError,
    TransientProviderError,
)
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.providers.omnisend import OmnisendProvider, retry_after

EMAIL = "ann@example.com"
TRANSACTION_ID = "0b5cfa8e-6d1f-4f7e-9a53-2c8e1d7b4a10"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOmnisend]:
    with FakeOmnisend(api_keys={API_KEY}) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOmnisend) -> FakeOmnisend:
    server.reset()
    return server


@pytest.fixture
def omnisend(fake: FakeOmnisend) -> Iterator[OmnisendProvider]:
    provider = OmnisendProvider.from_settings(
        ProviderSettings(base_urls={"omnisend": fake.base_url}, http_timeout=0.5)
    )
    yield provider
    provider.close()


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_the_contact_is_looked_up_read_only_then_its_properties_patched(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    contact_id = fake.add_contact(EMAIL, favourite_colour="green")

    outcome = omnisend.sync(
        API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
    )

    assert outcome == "synced"
    lookup, write = fake.requests
    assert (lookup.method, lookup.path, lookup.status) == ("GET", "/api/contacts", 200)
    assert lookup.query == {"email": EMAIL}
    assert (write.method, write.path, write.status) == ("PATCH", f"/api/contacts/{contact_id}", 200)
    for request in (lookup, write):
        assert request.headers["Authorization"] == f"Omnisend-API-Key {API_KEY}"
        assert request.headers["Omnisend-Version"] == "2026-03-15"
    assert write.json == {
        "customProperties": {
            "loyalty_points_balance": 170,
            "loyalty_lifetime_points": 950,
            "loyalty_vip_tier": "Gold",
            "loyalty_last_activity_at": "2025-01-02T03:04:05Z",
            "loyalty_revision": 7,
            "loyalty_points_expiring": 120,
            "loyalty_points_expiration_date": "2025-02-01T00:00:00Z",
        }
    }
    contact = fake.contact(EMAIL)
    assert contact is not None
    assert contact["customProperties"]["loyalty_points_balance"] == 170
    assert contact["customProperties"]["favourite_colour"] == "green"  # untouched


def test_a_contact_that_already_holds_the_state_is_not_written_again(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)
    throttle = CountingThrottle()

    first = omnisend.sync(API_KEY, customer(), push_profile=True, event=None, throttle=throttle)
    again = omnisend.sync(API_KEY, customer(), push_profile=True, event=None, throttle=throttle)

    assert (first, again) == ("synced", "skipped: omnisend already current")
    assert fake.contact_writes == 1
    assert [r.method for r in fake.requests] == ["GET", "PATCH", "GET"]


@pytest.mark.parametrize("stored", ["Ann@Example.com", "ann@example.com"])
def test_the_email_is_looked_up_exactly_as_stored_because_omnisend_matches_it_by_case(
    fake: FakeOmnisend, omnisend: OmnisendProvider, stored: str
) -> None:
    fake.add_contact("Ann@Example.com")

    outcome = omnisend.sync(
        API_KEY, customer(email=stored), push_profile=True, event=None, throttle=CountingThrottle()
    )

    assert fake.requests[0].query == {"email": stored}
    if stored == "Ann@Example.com":
        assert outcome == "synced"
        assert fake.contact_writes == 1
    else:
        assert outcome == "skipped: no omnisend contact"
        assert fake.contact_writes == 0
        assert fake.contact(stored) is None


def test_a_lost_tier_is_cleared_and_a_missing_activity_time_left_out(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL, loyalty_vip_tier="Gold")

    omnisend.sync(
        API_KEY,
        customer(tier=None, last_activity_at=None),
        push_profile=True,
        event=None,
        throttle=CountingThrottle(),
    )

    sent = fake.requests_to("PATCH", fake.requests[1].path)[0].json["customProperties"]
    assert sent["loyalty_vip_tier"] == ""
    assert "loyalty_last_activity_at" not in sent
    contact = fake.contact(EMAIL)
    assert contact is not None
    assert contact["customProperties"]["loyalty_vip_tier"] == ""


def test_the_event_carries_the_transaction_id_as_its_event_id(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    contact_id = fake.add_contact(EMAIL)
    throttle = CountingThrottle()
    event = adjustment(transaction_id=TRANSACTION_ID)

    for _ in range(2):  # a retried task sends the same event again
        omnisend.sync(API_KEY, customer(), push_profile=True, event=event, throttle=throttle)

    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("GET", "/api/contacts", 200),
        ("PATCH", f"/api/contacts/{contact_id}", 200),
        ("POST", "/api/events", 202),
        ("GET", "/api/contacts", 200),
        ("POST", "/api/events", 202),
    ]
    first, second = (r.json for r in fake.requests_to("POST", "/api/events"))
    assert first == second
    assert first == {
        "eventName": "loyalty points adjusted",
        "origin": "api",
        "eventID": TRANSACTION_ID,
        "eventTime": "2025-01-02T03:04:05Z",
        "contact": {"email": EMAIL},
        "properties": {
            "points": 50,
            "new_balance": 170,
            "lifetime_points": 950,
            "vip_tier": "Gold",
            "reason": "order #1001",
        },
    }
    assert len(fake.events) == 1  # same eventID and eventTime: processed once
    assert throttle.calls == len(fake.requests) == 5


def test_an_event_alone_still_looks_the_contact_up_first(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)

    outcome = omnisend.sync(
        API_KEY,
        customer(),
        push_profile=False,
        event=adjustment(transaction_id=TRANSACTION_ID),
        throttle=CountingThrottle(),
    )

    assert outcome == "synced"
    assert [r.method for r in fake.requests] == ["GET", "POST"]
    assert fake.contact_writes == 0


@pytest.mark.parametrize("push_profile", [True, False])
def test_no_contact_is_skipped_and_never_created(
    fake: FakeOmnisend, omnisend: OmnisendProvider, push_profile: bool
) -> None:
    outcome = omnisend.sync(
        API_KEY,
        customer(),
        push_profile=push_profile,
        event=adjustment(transaction_id=TRANSACTION_ID),
        throttle=CountingThrottle(),
    )

    assert outcome == "skipped: no omnisend contact"
    assert [(r.method, r.status) for r in fake.requests] == [("GET", 200)]
    assert fake.contacts == []
    assert fake.events == []


def test_no_email_is_skipped_without_a_request(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    throttle = CountingThrottle()

    outcome = omnisend.sync(
        API_KEY, customer(email=None), push_profile=True, event=adjustment(), throttle=throttle
    )

    assert outcome == "skipped: no email"
    assert fake.requests == []
    assert throttle.calls == 0


def test_429_waits_as_long_as_the_problem_body_says(
    fake: FakeOmnisend, omnisend: OmnisendProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_contact(EMAIL)
    fake.fail_next(1, status=429, retry_after=12)

    with pytest.raises(TransientProviderError) as caught:
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == 429
    assert caught.value.retry_after == 12
    assert fake.requests[0].status == 429
    assert_key_hidden(caught.value, caplog)


def test_429_without_a_hint_has_no_retry_after(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)
    fake.fail_next(1, status=429, retry_after=None)

    with pytest.raises(TransientProviderError) as caught:
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({"status": 429, "retryAfter": 9}, {"Retry-After": "3", "X-Rate-Limit-Reset": "40"}, 9),
        ({"status": 429}, {"Retry-After": "3", "X-Rate-Limit-Reset": "40"}, 3),
        ({"status": 429}, {"X-Rate-Limit-Reset": "40"}, 40),
        ({"status": 429}, {"Retry-After": "Wed, 21 Oct 2025 07:28:00 GMT"}, None),
        (None, {}, None),
    ],
)
def test_the_429_wait_comes_from_the_body_then_retry_after_then_the_reset_header(
    body: dict[str, int] | None, headers: dict[str, str], expected: float | None
) -> None:
    response = httpx.Response(429, json=body, headers=headers)

    assert retry_after(response) == expected


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(
    fake: FakeOmnisend, omnisend: OmnisendProvider, status: int
) -> None:
    fake.add_contact(EMAIL)
    fake.fail_next(1, status=status)

    with pytest.raises(TransientProviderError) as caught:
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == status
    assert len(fake.requests) == 1


def test_a_failed_sync_sent_again_delivers_its_event_once(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)
    event = adjustment(transaction_id=TRANSACTION_ID)
    fake.fail_always(503)
    with pytest.raises(TransientProviderError):
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=event, throttle=CountingThrottle()
        )
    fake.recover()

    omnisend.sync(API_KEY, customer(), push_profile=True, event=event, throttle=CountingThrottle())

    assert [r.status for r in fake.requests] == [503, 200, 200, 202]
    assert len(fake.events) == 1


def test_a_hanging_omnisend_is_transient_within_the_timeout(
    fake: FakeOmnisend, omnisend: OmnisendProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_contact(EMAIL)
    fake.hang_next(1, seconds=5)
    started = time.monotonic()

    with pytest.raises(TransientProviderError) as caught:
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert elapsed_since(started) < 3
    assert "ReadTimeout" in str(caught.value)
    assert_key_hidden(caught.value, caplog)


def test_a_wrong_key_is_permanent_and_never_echoed(
    fake: FakeOmnisend, omnisend: OmnisendProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_contact(EMAIL)

    with pytest.raises(PermanentProviderError) as caught:
        omnisend.sync(
            f"{API_KEY}-revoked",
            customer(),
            push_profile=True,
            event=None,
            throttle=CountingThrottle(),
        )

    assert caught.value.status == 401
    assert "Invalid API key" in str(caught.value)
    assert_key_hidden(caught.value, caplog)


@pytest.mark.parametrize("status", [400, 403, 409, 410, 422])
def test_other_client_errors_are_permanent(
    fake: FakeOmnisend, omnisend: OmnisendProvider, status: int
) -> None:
    fake.add_contact(EMAIL)
    fake.fail_next(1, status=status)

    with pytest.raises(PermanentProviderError) as caught:
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
        )

    assert caught.value.status == status


def test_the_http_client_is_rebuilt_in_a_forked_process(
    fake: FakeOmnisend, omnisend: OmnisendProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_contact(EMAIL)
    parent = omnisend._client.get()
    assert omnisend._client.get() is parent

    monkeypatch.setattr(base, "os", SimpleNamespace(getpid=lambda: -1))

    child = omnisend._client.get()
    assert child is not parent
    omnisend.sync(API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle())
    assert fake.requests[-1].status == 200
    omnisend.close()
    parent.close()


def test_expiry_events_are_named_in_omnisends_style(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)
    soon = adjustment(
        transaction_id=TRANSACTION_ID, name=POINTS_EXPIRING_SOON, expires_at=EXPIRES_AT
    )

    omnisend.sync(API_KEY, customer(), push_profile=False, event=soon, throttle=lambda: None)

    [sent] = [r.json for r in fake.requests_to("POST", "/api/events")]
    assert sent["eventName"] == "loyalty points expiring soon"
    assert sent["properties"]["expiration_date"] == "2025-02-01T00:00:00Z"
