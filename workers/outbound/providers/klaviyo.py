"""Klaviyo through the official ``klaviyo-api`` SDK.

The SDK's own retry loop is switched off (``max_retries=1`` is one attempt): it sleeps inside the
worker and retries POSTs behind our back. Failures are classified here and the task retries.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pydantic
import urllib3.exceptions
from klaviyo_api import KlaviyoAPI
from openapi_client.api_arg_options import USE_DICTIONARY_FOR_RESPONSE_DATA
from openapi_client.exceptions import ApiException

from models.domain.clock import as_utc
from workers.outbound.providers.base import (
    CustomerState,
    PermanentProviderError,
    PerProcess,
    PointsEvent,
    ProviderError,
    TransientProviderError,
    describe_failure,
    error_for_status,
    redact,
    seconds_from_header,
)
from workers.outbound.providers.client import Provider, SyncCall
from workers.outbound.providers.config import EnvSetting
from workers.outbound.providers.payloads import event_properties, loyalty_properties

# Each cached SDK client holds a urllib3 pool of keep-alive sockets; keep the busiest shops'.
MAX_CACHED_CLIENTS = 128


@dataclass(frozen=True)
class _Session:
    """The SDK rebuilds its API wrappers on every attribute access; build them once per key."""

    sdk: KlaviyoAPI
    profiles: Any
    events: Any


class KlaviyoProvider(Provider):
    name = "klaviyo"
    base_url_setting = EnvSetting("LOYALTY_KLAVIYO_BASE_URL", "https://a.klaviyo.com")
    rate_limit_setting = EnvSetting("LOYALTY_KLAVIYO_RATE_LIMIT", "75/second;700/minute")

    def _prepare(self) -> None:
        # The SDK's validator takes floats only: an int timeout is rejected before any request.
        self.request_timeout = (self.connect_timeout, self.read_timeout)
        self._sessions: PerProcess[OrderedDict[str, _Session]] = PerProcess(OrderedDict)
        self._lock = threading.Lock()

    def push(self, call: SyncCall) -> str:
        session = self._session(call.api_key)
        if call.push_profile:
            self._call(call, session.profiles.create_or_update_profile, profile_body(call.state))
        if call.event is not None:
            self._call(call, session.events.create_event, event_body(call.state, call.event))
        return "synced"

    def _call(self, call: SyncCall, operation: Any, body: dict[str, Any]) -> None:
        call.throttle()
        try:
            operation(body, _request_timeout=self.request_timeout)
        except Exception as exc:
            error = classify(exc, call.api_key)
            if error is None:
                raise
            # "from None": the SDK's exceptions carry request objects we have no reason to keep.
            raise error from None

    def close(self) -> None:
        """Close this process's connections (a later sync opens new ones)."""
        sessions = self._sessions.take()
        for session in (sessions or {}).values():
            _close(session)

    def _session(self, api_key: str) -> _Session:
        sessions = self._sessions.get()
        with self._lock:
            session = sessions.get(api_key)
            if session is not None:
                sessions.move_to_end(api_key)
                return session
            sdk = KlaviyoAPI(
                api_key,
                max_delay=1,
                max_retries=1,
                test_host=self.base_url,
                options={USE_DICTIONARY_FOR_RESPONSE_DATA: True},
            )
            session = _Session(sdk=sdk, profiles=sdk.Profiles, events=sdk.Events)
            sessions[api_key] = session
            while len(sessions) > MAX_CACHED_CLIENTS:
                _close(sessions.popitem(last=False)[1])
            return session


def _close(session: _Session) -> None:
    session.sdk.api_client.rest_client.pool_manager.clear()


def profile_identity(state: CustomerState) -> dict[str, str]:
    """Who the profile is: our customer id always, email and phone when known."""
    identity = {"external_id": state.customer_id}
    if state.email:
        identity["email"] = state.email
    if state.phone:
        identity["phone_number"] = state.phone
    return identity


def profile_body(state: CustomerState) -> dict[str, Any]:
    attributes: dict[str, Any] = profile_identity(state)
    if state.first_name:
        attributes["first_name"] = state.first_name
    if state.last_name:
        attributes["last_name"] = state.last_name
    # None is sent as null, which clears the property (a tier the customer lost).
    attributes["properties"] = loyalty_properties(state)
    return {"data": {"type": "profile", "attributes": attributes}}


def event_body(state: CustomerState, event: PointsEvent) -> dict[str, Any]:
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": event_properties(event),
                "time": as_utc(event.occurred_at),
                "value": event.points,
                # Klaviyo records a unique_id once per profile and metric: retries are harmless.
                "unique_id": event.transaction_id,
                "metric": {"data": {"type": "metric", "attributes": {"name": event.name}}},
                "profile": {"data": {"type": "profile", "attributes": profile_identity(state)}},
            },
        }
    }


def classify(exc: Exception, api_key: str) -> ProviderError | None:
    """Map what the SDK raises onto retry-or-not; ``None`` for anything unexpected."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        headers = exc.headers or {}
        if status == 0:  # the SDK's wrapper for TLS failures
            return TransientProviderError(
                f"klaviyo connection failed: {redact(str(exc.reason or ''), api_key)}"
            )
        return error_for_status(
            "klaviyo",
            status,
            redact(error_detail(exc.body), api_key),
            retry_after=seconds_from_header(headers.get("Retry-After")),
        )
    if isinstance(exc, urllib3.exceptions.LocationValueError):
        return PermanentProviderError("klaviyo base URL is not a valid URL")
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return TransientProviderError(f"klaviyo request failed: {describe_failure(exc, api_key)}")
    if isinstance(exc, pydantic.ValidationError):
        fields = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
        return PermanentProviderError(f"klaviyo rejected the payload locally: {fields}")
    return None


def error_detail(body: str | None) -> str:
    """Klaviyo's JSON:API errors say what was wrong in ``title``/``detail``."""
    if not body:
        return ""
    try:
        first = json.loads(body)["errors"][0]
        title, detail = str(first.get("title") or ""), str(first.get("detail") or "")
        return detail if detail.startswith(title) else f"{title} {detail}".strip()
    except (ValueError, TypeError, LookupError, AttributeError):
        return body[:300]
