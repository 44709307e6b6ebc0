"""The Omnisend client against the fake Omnisend over HTTP."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest

from tests.support.fakes import FakeOmnisend
from tests.workers.providers import (
    API_KEY,
    CountingThrottle,
    adjustment,
    assert_key_hidden,
    customer,
    elapsed_since,
)
from workers.providers import base
from workers.providers.base import PermanentProviderError, TransientProviderError
from workers.providers.config import ProviderSettings
from workers.providers.omnisend import EVENT_ID_NAMESPACE, OmnisendProvider, retry_after

EMAIL = "ann@example.com"


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
        ProviderSettings(omnisend_base_url=fake.base_url, http_timeout=0.5)
    )
    yield provider
    provider.close()


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_profile_patches_custom_properties_of_the_existing_contact(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL, favourite_colour="green")

    outcome = omnisend.sync(
        API_KEY, customer(), push_profile=True, event=None, throttle=CountingThrottle()
    )

    assert outcome == "synced"
    [request] = fake.requests
    assert (request.method, request.path, request.status) == ("PATCH", "/api/contacts", 200)
    assert request.query == {"email": EMAIL}
    assert request.headers["Authorization"] == f"Omnisend-API-Key {API_KEY}"
    assert request.headers["Omnisend-Version"] == "2026-03-15"
    assert request.json == {
        "customProperties": {
            "loyalty_points_balance": 170,
            "loyalty_lifetime_points": 950,
            "loyalty_vip_tier": "Gold",
            "loyalty_last_activity_at": "2025-01-02T03:04:05Z",
            "loyalty_revision": 7,
        }
    }
    contact = fake.contact(EMAIL)
    assert contact is not None
    assert contact["customProperties"]["loyalty_points_balance"] == 170
    assert contact["customProperties"]["favourite_colour"] == "green"  # untouched


def test_the_email_is_normalised_because_omnisend_matches_it_case_sensitively(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)

    omnisend.sync(
        API_KEY,
        customer(email="  Ann@Example.COM "),
        push_profile=True,
        event=None,
        throttle=CountingThrottle(),
    )

    assert fake.requests[0].query == {"email": EMAIL}
    assert fake.requests[0].status == 200


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

    sent = fake.requests[0].json["customProperties"]
    assert sent["loyalty_vip_tier"] == ""
    assert "loyalty_last_activity_at" not in sent
    contact = fake.contact(EMAIL)
    assert contact is not None
    assert contact["customProperties"]["loyalty_vip_tier"] == ""


def test_the_event_follows_the_profile_with_a_stable_event_id(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)
    throttle = CountingThrottle()

    for _ in range(2):  # a retried task sends the same event again
        omnisend.sync(API_KEY, customer(), push_profile=True, event=adjustment(), throttle=throttle)

    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("PATCH", "/api/contacts", 200),
        ("POST", "/api/events", 202),
    ] * 2
    first, second = (r.json for r in fake.requests_to("POST", "/api/events"))
    assert first == second
    assert first == {
        "eventName": "loyalty points adjusted",
        "origin": "api",
        "eventID": str(uuid.uuid5(EVENT_ID_NAMESPACE, "tx-1001")),
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
    assert fake.requests[1].headers["Omnisend-Version"] == "2026-03-15"
    assert len(fake.events) == 1  # same eventID and eventTime: processed once
    assert throttle.calls == len(fake.requests) == 4


def test_an_event_alone_still_checks_the_contact_exists_first(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)

    outcome = omnisend.sync(
        API_KEY, customer(), push_profile=False, event=adjustment(), throttle=CountingThrottle()
    )

    assert outcome == "synced"
    assert [r.method for r in fake.requests] == ["PATCH", "POST"]


@pytest.mark.parametrize("push_profile", [True, False])
def test_no_contact_is_skipped_and_never_created(
    fake: FakeOmnisend, omnisend: OmnisendProvider, push_profile: bool
) -> None:
    outcome = omnisend.sync(
        API_KEY,
        customer(),
        push_profile=push_profile,
        event=adjustment(),
        throttle=CountingThrottle(),
    )

    assert outcome == "skipped: no omnisend contact"
    assert [(r.method, r.status) for r in fake.requests] == [("PATCH", 404)]
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


def test_a_failing_event_after_the_profile_is_transient(
    fake: FakeOmnisend, omnisend: OmnisendProvider
) -> None:
    fake.add_contact(EMAIL)
    fake.fail_always(503)
    with pytest.raises(TransientProviderError):
        omnisend.sync(
            API_KEY, customer(), push_profile=True, event=adjustment(), throttle=CountingThrottle()
        )
    fake.recover()

    omnisend.sync(
        API_KEY, customer(), push_profile=True, event=adjustment(), throttle=CountingThrottle()
    )

    assert [r.status for r in fake.requests] == [503, 200, 202]
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
