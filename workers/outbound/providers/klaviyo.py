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

from workers.outbound.providers.base import (
    CustomerState,
    PermanentProviderError,
    PerProcess,
    PointsEvent,
    ProviderError,
    Throttle,
    TransientProviderError,
    as_utc,
    error_for_status,
    event_properties,
    loyalty_properties,
    redact,
    seconds_from_header,
)
from workers.outbound.providers.config import ProviderSettings

METRIC_NAME = "Loyalty Points Adjusted"
# Each cached SDK client holds a urllib3 pool of keep-alive sockets; keep the busiest shops'.
MAX_CACHED_CLIENTS = 128


@dataclass(frozen=True)
class _Session:
    """The SDK rebuilds its API wrappers on every attribute access; build them once per key."""

    sdk: KlaviyoAPI
    profiles: Any
    events: Any


class KlaviyoProvider:
    name = "klaviyo"

    def __init__(
        self,
        base_url: str = ProviderSettings.klaviyo_base_url,
        *,
        timeout: float = ProviderSettings.http_timeout,
        connect_timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        read = float(timeout)
        # The SDK's validator takes floats only: an int timeout is rejected before any request.
        self.request_timeout = (float(min(connect_timeout or read, read)), read)
        self._sessions: PerProcess[OrderedDict[str, _Session]] = PerProcess(OrderedDict)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> KlaviyoProvider:
        return cls(
            settings.klaviyo_base_url,
            timeout=settings.http_timeout,
            connect_timeout=settings.connect_timeout,
        )

    def sync(
        self,
        api_key: str,
        state: CustomerState,
        *,
        push_profile: bool,
        event: PointsEvent | None,
        throttle: Throttle,
    ) -> str:
        if not push_profile and event is None:
            return "skipped: nothing to send"
        session = self._session(api_key)
        if push_profile:
            self._call(
                api_key, throttle, session.profiles.create_or_update_profile, profile_body(state)
            )
        if event is not None:
            self._call(api_key, throttle, session.events.create_event, event_body(state, event))
        return "synced"

    def _call(self, api_key: str, throttle: Throttle, operation: Any, body: dict[str, Any]) -> None:
        throttle()
        try:
            operation(body, _request_timeout=self.request_timeout)
        except Exception as exc:
            error = classify(exc, api_key)
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
                "metric": {"data": {"type": "metric", "attributes": {"name": METRIC_NAME}}},
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
        return TransientProviderError(
            f"klaviyo request failed: {type(exc).__name__}: {redact(str(exc), api_key)[:300]}"
        )
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
