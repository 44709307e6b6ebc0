"""A fake Klaviyo (API revision 2026-10-15): profile import and events, JSON:API bodies.

What it holds to, as Klaviyo documents it:
* ``Authorization: Klaviyo-API-Key <key>`` and a ``revision: YYYY-MM-DD`` header on every call;
* ``POST /api/profile-import`` upserts by external_id / email / phone_number (201 new, 200
  update), a null attribute or property clears it, identifiers of two different profiles is a
  409 ``duplicate_profile``;
* ``POST /api/events`` answers 202 with no body, creates the profile when needed, and records a
  ``unique_id`` only once per profile and metric (the time to the second when there is none);
* errors are ``{"errors": [{id, status, code, title, detail, source: {pointer}}]}`` and a 429
  carries an integer ``Retry-After`` header.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.fakes.server import BadRequest, FakeProviderServer, RecordedRequest, Reply

REVISION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IDENTIFIERS = ("external_id", "email", "phone_number")
PROFILE_ATTRIBUTES = {
    "email", "phone_number", "external_id", "_kx", "first_name", "last_name", "organization",
    "locale", "title", "image", "location", "properties",
}  # fmt: skip


def _error(
    status: int, code: str, title: str, detail: str, pointer: str = "/data/"
) -> dict[str, Any]:
    return {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": status,
                "code": code,
                "title": title,
                "detail": detail,
                "source": {"pointer": pointer},
            }
        ]
    }


class FakeKlaviyo(FakeProviderServer):
    name = "klaviyo"
    content_type = "application/vnd.api+json"

    # -- state ----------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self._profiles: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []

    def profile(self, identifier: str) -> dict[str, Any] | None:
        """A profile by Klaviyo id, external_id, email or phone number (a copy)."""
        with self.lock:
            for profile in self._profiles.values():
                if identifier == profile["id"] or identifier in (
                    profile.get(name) for name in IDENTIFIERS
                ):
                    return self.snapshot(profile)
            return None

    @property
    def profiles(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.snapshot(list(self._profiles.values()))

    @property
    def events(self) -> list[dict[str, Any]]:
        """Recorded events (duplicates by unique_id are not recorded twice), oldest first."""
        with self.lock:
            return self.snapshot(self._events)

    def events_for(self, identifier: str) -> list[dict[str, Any]]:
        profile = self.profile(identifier)
        if profile is None:
            return []
        return [event for event in self.events if event["profile_id"] == profile["id"]]

    def add_profile(self, **attributes: Any) -> str:
        """Seed a profile, e.g. one already holding an email, to provoke a conflict."""
        with self.lock:
            profile_id = self._new_profile()
            self._apply(self._profiles[profile_id], attributes)
            return profile_id

    # -- protocol -------------------------------------------------------------------------------

    def authorized(self, request: RecordedRequest) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Klaviyo-API-Key" and key in self.api_keys

    def unauthorized(self, request: RecordedRequest) -> Reply:
        return Reply(
            401,
            _error(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid private key.",
            ),
        )

    def missing_headers(self, request: RecordedRequest) -> Reply | None:
        revision = request.headers.get("revision")
        if not revision:
            return Reply(400, _error(400, "invalid", "Invalid input.", "Missing revision header."))
        if not REVISION_PATTERN.match(revision):
            return Reply(
                400, _error(400, "invalid", "Invalid input.", f"Invalid revision: {revision}.")
            )
        return None

    def fault(self, request: RecordedRequest, status: int, retry_after: float | None) -> Reply:
        if status == 429:
            seconds = max(1, math.ceil(retry_after or 1))  # Klaviyo sends whole seconds
            return Reply(
                429,
                _error(
                    429,
                    "throttled",
                    "Request was throttled.",
                    f"Request was throttled. Expected available in {seconds} second.",
                ),
                headers={"Retry-After": str(seconds)},
            )
        if status >= 500:
            return Reply(
                status, _error(status, "error", "A server error occurred.", "Please try again.")
            )
        return Reply(status, _error(status, "error", "Error.", f"Injected HTTP {status}."))

    def bad_request(self, request: RecordedRequest, error: BadRequest) -> Reply:
        return Reply(
            400, _error(400, "invalid", "Invalid input.", error.message, error.pointer or "/data/")
        )

    def not_found(self, request: RecordedRequest, what: str) -> Reply:
        return Reply(404, _error(404, "not_found", "Not found.", what))

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/api/profile-import" and request.method == "POST":
            return self._profile_import(request)
        if request.path == "/api/events" and request.method == "POST":
            return self._create_event(request)
        return self.not_found(request, f"{request.method} {request.path} is not an endpoint.")

    # -- endpoints ------------------------------------------------------------------------------

    def _profile_import(self, request: RecordedRequest) -> Reply:
        data = _resource(request.json, "profile")
        attributes = _object(data.get("attributes"), "/data/attributes")
        _check_profile_attributes(attributes, "/data/attributes")
        matched = self._matching_profiles(attributes)
        if len(matched) > 1:
            reply = _error(
                409,
                "duplicate_profile",
                "Conflict.",
                "A profile already exists with one of these identifiers.",
            )
            reply["errors"][0]["meta"] = {"duplicate_profile_id": matched[1]}
            return Reply(409, reply)
        created = not matched
        profile_id = self._new_profile() if created else matched[0]
        profile = self._profiles[profile_id]
        self._apply(profile, attributes)
        return Reply(
            201 if created else 200,
            {
                "data": {
                    "type": "profile",
                    "id": profile_id,
                    "attributes": {k: v for k, v in profile.items() if k != "id"},
                    "links": {"self": f"{self.base_url}/api/profiles/{profile_id}/"},
                }
            },
        )

    def _create_event(self, request: RecordedRequest) -> Reply:
        data = _resource(request.json, "event")
        attributes = _object(data.get("attributes"), "/data/attributes")
        properties = _object(attributes.get("properties"), "/data/attributes/properties")
        metric = _resource(attributes.get("metric"), "metric", "/data/attributes/metric")
        metric_name = _object(metric.get("attributes"), "/data/attributes/metric/data/attributes")
        name = metric_name.get("name")
        if not isinstance(name, str) or not 0 < len(name) < 128:
            raise BadRequest(
                "Metric name must be 1-127 characters.",
                "/data/attributes/metric/data/attributes/name",
            )
        profile_data = _resource(attributes.get("profile"), "profile", "/data/attributes/profile")
        pointer = "/data/attributes/profile/data/attributes"
        identity = _object(profile_data.get("attributes"), pointer)
        _check_profile_attributes(identity, pointer)
        when = _event_time(attributes.get("time"))
        value = attributes.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequest("value must be a number.", "/data/attributes/value")
        unique_id = attributes.get("unique_id")
        if unique_id is not None and not isinstance(unique_id, str):
            raise BadRequest("unique_id must be a string.", "/data/attributes/unique_id")

        matched = self._matching_profiles(identity)
        profile_id = matched[0] if matched else self._new_profile()
        self._apply(self._profiles[profile_id], identity)
        dedupe = unique_id if unique_id is not None else when.replace(microsecond=0).isoformat()
        duplicate = any(
            event["profile_id"] == profile_id
            and event["metric"] == name
            and event["dedupe_key"] == dedupe
            for event in self._events
        )
        if not duplicate:
            self._events.append(
                {
                    "id": uuid.uuid4().hex,
                    "profile_id": profile_id,
                    "metric": name,
                    "properties": properties,
                    "time": when.replace(microsecond=0).isoformat(),
                    "value": value,
                    "unique_id": unique_id,
                    "dedupe_key": dedupe,
                    "backfill": bool(attributes.get("backfill", False)),
                    "profile": identity,
                }
            )
        return Reply(202)

    # -- helpers --------------------------------------------------------------------------------

    def _matching_profiles(self, attributes: dict[str, Any]) -> list[str]:
        matched: list[str] = []
        for name in IDENTIFIERS:
            value = attributes.get(name)
            if not value:
                continue
            for profile_id, profile in self._profiles.items():
                if profile.get(name) == value and profile_id not in matched:
                    matched.append(profile_id)
        return matched

    def _new_profile(self) -> str:
        profile_id = "01" + uuid.uuid4().hex[:24].upper()
        self._profiles[profile_id] = {"id": profile_id, "properties": {}}
        return profile_id

    @staticmethod
    def _apply(profile: dict[str, Any], attributes: dict[str, Any]) -> None:
        """Omitted fields stay as they are; null clears one (a property too)."""
        for name, value in attributes.items():
            if name == "properties":
                for key, item in (value or {}).items():
                    if item is None:
                        profile["properties"].pop(key, None)
                    else:
                        profile["properties"][key] = item
            elif value is None:
                profile.pop(name, None)
            else:
                profile[name] = value


def _object(value: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("This field must be an object.", pointer)
    return value


def _resource(document: Any, kind: str, pointer: str = "") -> dict[str, Any]:
    """``{"data": {"type": kind, ...}}``, the JSON:API envelope."""
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON:API document.", pointer or "/")
    data = _object(document.get("data"), f"{pointer}/data")
    if data.get("type") != kind:
        raise BadRequest(f"The type must be '{kind}'.", f"{pointer}/data/type")
    return data


def _check_profile_attributes(attributes: dict[str, Any], pointer: str) -> None:
    unknown = set(attributes) - PROFILE_ATTRIBUTES - {"anonymous_id"}
    if unknown:
        raise BadRequest(f"Unknown attribute(s): {', '.join(sorted(unknown))}.", pointer)
    if not any(attributes.get(name) for name in (*IDENTIFIERS, "anonymous_id", "_kx")):
        raise BadRequest("A profile needs an email, phone_number or external_id.", pointer)
    for name, value in attributes.items():
        if (
            name not in ("properties", "location")
            and value is not None
            and not isinstance(value, str)
        ):
            raise BadRequest(f"{name} must be a string.", f"{pointer}/{name}")
    email = attributes.get("email")
    if email is not None and not EMAIL.match(email):
        raise BadRequest("Invalid email address.", f"{pointer}/email")
    phone = attributes.get("phone_number")
    if phone is not None and not E164.match(phone):
        raise BadRequest("Invalid phone number format (E.164).", f"{pointer}/phone_number")
    if attributes.get("properties") is not None:
        _object(attributes["properties"], f"{pointer}/properties")


def _event_time(value: Any) -> datetime:
    now = datetime.now(UTC)
    if value is None:
        return now
    if not isinstance(value, str):
        raise BadRequest("time must be an ISO 8601 datetime.", "/data/attributes/time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest("time must be an ISO 8601 datetime.", "/data/attributes/time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.year < 1990 or when > now + timedelta(days=365):
        raise BadRequest("time must be after 1990 and within a year.", "/data/attributes/time")
    return when.astimezone(UTC)
