"""A fake Omnisend (API version 2026-03-15): contact updates by email and custom events.

What it holds to, as Omnisend documents it:
* ``Authorization: Omnisend-API-Key <key>`` and ``Omnisend-Version: 2026-03-15`` on every call;
* ``GET /api/contacts?email=`` lists the contacts whose email is exactly that (identifiers are
  case-sensitive) as ``{"contacts": [...], "paging": {...}}``, and changes nothing;
* ``PATCH /api/contacts/{id}`` and ``PATCH /api/contacts?email=`` update only what the body
  names and answer 404 when there is no such contact; custom property names are
  ``[A-Za-z0-9_]`` of at most 128 characters, values booleans, numbers, strings (2048 max) or
  string arrays, and a contact holds at most 200 of them; ``contact_writes`` counts the updates;
* ``POST /api/events`` answers 202 and, like Omnisend, creates the contact it names when there
  is none (tests use this to prove a client never caused one); an eventID seen before with the
  same eventTime is processed once;
* errors are RFC 9457 problems ``{type, title, status, detail, instance}`` (400s add
  ``errors: [{field, code, message}]``) and a 429 says how long to wait in ``retryAfter``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from tests.support.fakes.server import BadRequest, FakeProviderServer, RecordedRequest, Reply

API_VERSION = "2026-03-15"
PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_]{1,128}$")
MAX_PROPERTIES = 200
CONTACT_FIELDS = {
    "firstName", "lastName", "gender", "birthdate", "country", "countryCode", "state", "city",
    "address", "postalCode", "tags", "customProperties",
}  # fmt: skip


def _problem(
    status: int, kind: str, title: str, detail: str, instance: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": f"https://problems.omnisend.com/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }


class FakeOmnisend(FakeProviderServer):
    name = "omnisend"

    # -- state ----------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self._contacts: dict[str, dict[str, Any]] = {}  # by email, exactly as stored
        self._events: list[dict[str, Any]] = []
        self._contact_writes = 0

    def add_contact(self, email: str, **custom_properties: Any) -> str:
        """A contact that exists at Omnisend (our client never creates one)."""
        with self.lock:
            contact = self._new_contact(email, created_by="test")
            contact["customProperties"].update(custom_properties)
            return str(contact["id"])

    def contact(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            return self.snapshot(self._contacts.get(email))

    @property
    def contacts(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.snapshot(list(self._contacts.values()))

    @property
    def contact_writes(self) -> int:
        """Contact updates accepted (a lookup is not one)."""
        with self.lock:
            return self._contact_writes

    @property
    def events(self) -> list[dict[str, Any]]:
        """Accepted events, oldest first (a repeated eventID + eventTime is not kept twice)."""
        with self.lock:
            return self.snapshot(self._events)

    # -- protocol -------------------------------------------------------------------------------

    def authorized(self, request: RecordedRequest) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Omnisend-API-Key" and key in self.api_keys

    def unauthorized(self, request: RecordedRequest) -> Reply:
        return Reply(
            401,
            _problem(401, "unauthorized", "Unauthorized", "Invalid API key.", request.path),
        )

    def missing_headers(self, request: RecordedRequest) -> Reply | None:
        version = request.headers.get("Omnisend-Version")
        if version == API_VERSION:
            return None
        detail = (
            "The Omnisend-Version header is required."
            if not version
            else f"Unsupported Omnisend-Version {version!r}."
        )
        return Reply(400, _problem(400, "bad-request", "Bad Request", detail, request.path))

    def fault(self, request: RecordedRequest, status: int, retry_after: float | None) -> Reply:
        if status == 429:
            extra = {} if retry_after is None else {"retryAfter": retry_after}
            return Reply(
                429,
                _problem(
                    429,
                    "rate-limit-exceeded",
                    "Too Many Requests",
                    "Rate limit exceeded.",
                    request.path,
                    **extra,
                ),
            )
        kind = "internal-server-error" if status >= 500 else "error"
        return Reply(status, _problem(status, kind, "Error", f"HTTP {status}.", request.path))

    def bad_request(self, request: RecordedRequest, error: BadRequest) -> Reply:
        return Reply(
            400,
            _problem(
                400,
                "validation-error",
                "Bad Request",
                "The request is invalid.",
                request.path,
                errors=[{"field": error.pointer, "code": "invalid", "message": error.message}],
            ),
        )

    def not_found(self, request: RecordedRequest, what: str) -> Reply:
        return Reply(404, _problem(404, "not-found", "Not Found", what, request.path))

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/api/contacts" and request.method == "GET":
            return self._list_contacts(request)
        if request.path == "/api/contacts" and request.method == "PATCH":
            return self._patch_contact(request, self._contacts.get(request.query.get("email", "")))
        if request.path.startswith("/api/contacts/") and request.method == "PATCH":
            contact_id = request.path.removeprefix("/api/contacts/")
            found = (c for c in self._contacts.values() if c["id"] == contact_id)
            return self._patch_contact(request, next(found, None))
        if request.path == "/api/events" and request.method == "POST":
            return self._create_event(request)
        return self.not_found(request, f"{request.method} {request.path} is not an endpoint.")

    # -- endpoints ------------------------------------------------------------------------------

    def _list_contacts(self, request: RecordedRequest) -> Reply:
        email = request.query.get("email")
        if email is None:
            found = list(self._contacts.values())
        else:
            found = [self._contacts[email]] if email in self._contacts else []
        paging = {"cursors": {"after": None, "before": None}, "hasMore": False, "limit": 100}
        return Reply(200, {"contacts": found, "paging": paging})

    def _patch_contact(self, request: RecordedRequest, contact: dict[str, Any] | None) -> Reply:
        if request.path == "/api/contacts" and not request.query.get("email"):
            raise BadRequest("The email query parameter is required.", "email")
        body = request.json
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.", "body")
        unknown = set(body) - CONTACT_FIELDS
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", "body")
        if contact is None:
            return self.not_found(request, "Contact not found.")
        properties = body.get("customProperties", {})
        _check_properties(properties)
        merged = {**contact["customProperties"], **properties}
        if len(merged) > MAX_PROPERTIES:
            raise BadRequest(
                f"A contact has at most {MAX_PROPERTIES} properties.", "customProperties"
            )
        contact["customProperties"] = merged
        for name in CONTACT_FIELDS - {"customProperties"}:
            if name in body:
                contact[name] = body[name]
        contact["updatedAt"] = _now()
        self._contact_writes += 1
        return Reply(200, contact)

    def _create_event(self, request: RecordedRequest) -> Reply:
        body = request.json
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.", "body")
        name = body.get("eventName")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("eventName is required.", "eventName")
        if body.get("origin") != "api":
            raise BadRequest("origin must be 'api'.", "origin")
        event_id = body.get("eventID")
        if event_id is not None:
            try:
                version = uuid.UUID(str(event_id)).version
            except ValueError:
                version = None
            if version not in (4, 5, 6, 7):
                raise BadRequest("eventID must be a UUID (v4-v7).", "eventID")
        event_time = body.get("eventTime")
        if event_time is not None:
            try:
                parsed = datetime.fromisoformat(str(event_time))
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise BadRequest("eventTime must be RFC 3339 with a time zone.", "eventTime")
        contact = body.get("contact")
        if not isinstance(contact, dict) or not any(
            contact.get(key) for key in ("id", "email", "phone")
        ):
            raise BadRequest("contact needs an id, email or phone.", "contact")
        properties = body.get("properties", {})
        if not isinstance(properties, dict):
            raise BadRequest("properties must be an object.", "properties")

        email = contact.get("email")
        if email and email not in self._contacts:
            self._new_contact(email, created_by="event")  # what Omnisend does with an event
        duplicate = event_id is not None and any(
            event["eventID"] == event_id and event["eventTime"] == event_time
            for event in self._events
        )
        if not duplicate:
            self._events.append({**body, "receivedAt": _now()})
        return Reply(202)

    def _new_contact(self, email: str, *, created_by: str) -> dict[str, Any]:
        contact: dict[str, Any] = {
            "id": uuid.uuid4().hex[:24],
            "email": email,
            "customProperties": {},
            "createdBy": created_by,
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        self._contacts[email] = contact
        return contact


def _check_properties(properties: Any) -> None:
    if not isinstance(properties, dict):
        raise BadRequest("customProperties must be an object.", "customProperties")
    for name, value in properties.items():
        field = f"customProperties.{name}"
        if not PROPERTY_NAME.match(name):
            raise BadRequest("Names are letters, digits and _ (at most 128).", field)
        if isinstance(value, bool | int | float):
            continue
        if isinstance(value, str):
            if len(value) > 2048:
                raise BadRequest("Strings are at most 2048 characters.", field)
            continue
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            continue
        raise BadRequest("Values are booleans, numbers, strings or string arrays.", field)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
