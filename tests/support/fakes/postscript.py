"""A fake Postscript (Partner/Shop API v2): subscriber lookup and update, custom events.

What it holds to, as Postscript documents it:
* ``Authorization: Bearer <key>`` on every call;
* ``GET /api/v2/subscribers`` filters with ``phone_number__eq`` / ``email__eq`` (and answers
  ``{"page_info": …, "subscribers": […]}``); a filter it does not know is a 400, so a typo in
  the client cannot pass for "no subscriber";
* ``PATCH /api/v2/subscribers/{id}`` merges ``properties`` (strings, integers, string arrays,
  dates; at most 50 per subscriber; a null ``properties`` is ignored), adds ``tags``, and sets
  ``email`` only when there is none;
* ``POST /api/v2/events`` needs a ``type`` of ``[A-Za-z0-9_]``, one of subscriber_id / phone /
  email naming an existing subscriber, ``occurred_at`` as ``%Y-%m-%d %H:%M:%S.%f``; answers 202
  ``{"event_ids": [...]}``. Postscript documents no deduplication: every event is kept;
* errors are ``{error_code, error_message, success: false}`` (validation 400s use
  ``{"errors": [{ctx, log, msg, type}]}``) and a 429 is error_code 3002 with no Retry-After.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.support.fakes.server import BadRequest, FakeProviderServer, RecordedRequest, Reply

EVENT_TYPE = re.compile(r"^[A-Za-z0-9_]+$")
OCCURRED_AT_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
MAX_PROPERTIES = 50
LOOKUP_FILTERS = {"phone_number__eq", "email__eq", "page", "sort"}
SUBSCRIBER_PATH = re.compile(r"^/api/v2/subscribers/([^/]+)$")


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "success": False}


class FakePostscript(FakeProviderServer):
    name = "postscript"

    # -- state ----------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self._subscribers: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []

    def add_subscriber(
        self,
        *,
        phone: str | None = None,
        email: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> str:
        """An opted-in SMS subscriber (our client never creates one). Returns its id."""
        if phone is None and email is None:
            raise ValueError("a subscriber needs a phone number or an email")
        with self.lock:
            subscriber_id = f"sub_{uuid.uuid4().hex[:16]}"
            now = _now()
            self._subscribers[subscriber_id] = {
                "id": subscriber_id,
                "ps_id": len(self._subscribers) + 1,
                "phone_number": phone,
                "email": email,
                "properties": dict(properties or {}),
                "shopify_customer_id": None,
                "subscriptions": {
                    "promotional": {"can_send": True},
                    "transactional": {"can_send": True},
                },
                "tags": [],
                "created_at": now,
                "updated_at": now,
            }
            return subscriber_id

    def subscriber(self, identifier: str) -> dict[str, Any] | None:
        """A subscriber by id, phone number or email (a copy)."""
        with self.lock:
            found = self._find(identifier)
            return self.snapshot(found)

    @property
    def subscribers(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.snapshot(list(self._subscribers.values()))

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.snapshot(self._events)

    # -- protocol -------------------------------------------------------------------------------

    def authorized(self, request: RecordedRequest) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and key in self.api_keys

    def unauthorized(self, request: RecordedRequest) -> Reply:
        return Reply(401, _error(1001, "Invalid API key"))

    def fault(self, request: RecordedRequest, status: int, retry_after: float | None) -> Reply:
        if status == 429:  # Postscript gives no hint of how long to wait
            return Reply(429, _error(3002, "Rate limit exceeded"))
        if status >= 500:
            return Reply(status, _error(5000, "Internal server error"))
        return Reply(status, _error(status * 10, f"HTTP {status}"))

    def bad_request(self, request: RecordedRequest, error: BadRequest) -> Reply:
        location = [error.pointer] if error.pointer else []
        return Reply(
            400,
            {
                "errors": [
                    {
                        "ctx": {"loc": location},
                        "log": [],
                        "msg": error.message,
                        "type": "value_error",
                    }
                ]
            },
        )

    def not_found(self, request: RecordedRequest, what: str) -> Reply:
        return Reply(404, _error(4004, what))

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/api/v2/subscribers" and request.method == "GET":
            return self._list_subscribers(request)
        if request.path == "/api/v2/events" and request.method == "POST":
            return self._create_event(request)
        match = SUBSCRIBER_PATH.match(request.path)
        if match:
            subscriber = self._subscribers.get(match.group(1))
            if subscriber is None:
                return self.not_found(request, "Subscriber not found")
            if request.method == "GET":
                return Reply(200, subscriber)
            if request.method == "PATCH":
                return self._update_subscriber(request, subscriber)
        return self.not_found(request, f"{request.method} {request.path} is not an endpoint")

    # -- endpoints ------------------------------------------------------------------------------

    def _list_subscribers(self, request: RecordedRequest) -> Reply:
        unknown = set(request.query) - LOOKUP_FILTERS
        if unknown:
            raise BadRequest(f"Unknown filter(s): {', '.join(sorted(unknown))}", "query")
        found = list(self._subscribers.values())
        if "phone_number__eq" in request.query:
            found = [s for s in found if s["phone_number"] == request.query["phone_number__eq"]]
        if "email__eq" in request.query:
            wanted = request.query["email__eq"].lower()
            found = [s for s in found if (s["email"] or "").lower() == wanted]
        return Reply(200, {"page_info": {"page": 1, "total_pages": 1}, "subscribers": found})

    def _update_subscriber(self, request: RecordedRequest, subscriber: dict[str, Any]) -> Reply:
        body = request.json
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object", "body")
        unknown = set(body) - {"email", "tags", "properties"}
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}", "body")
        properties = body.get("properties")
        if properties is not None:
            _check_properties(properties)
            merged = {**subscriber["properties"], **properties}
            if len(merged) > MAX_PROPERTIES:
                raise BadRequest(f"At most {MAX_PROPERTIES} custom properties", "properties")
            subscriber["properties"] = merged
        tags = body.get("tags")
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise BadRequest("tags must be a list of strings", "tags")
            subscriber["tags"] += [tag for tag in tags if tag not in subscriber["tags"]]
        if body.get("email") and not subscriber["email"]:
            subscriber["email"] = body["email"]
        subscriber["updated_at"] = _now()
        return Reply(200, subscriber)

    def _create_event(self, request: RecordedRequest) -> Reply:
        body = request.json
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object", "body")
        kind = body.get("type")
        if not isinstance(kind, str) or not EVENT_TYPE.match(kind):
            raise BadRequest("type is required: letters, digits and _ only", "type")
        occurred_at = body.get("occurred_at")
        if occurred_at is not None:
            try:
                datetime.strptime(str(occurred_at), OCCURRED_AT_FORMAT)
            except ValueError:
                raise BadRequest(
                    f"occurred_at must match {OCCURRED_AT_FORMAT} (UTC)", "occurred_at"
                ) from None
        external_id = body.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            raise BadRequest("external_id must be a string", "external_id")
        properties = body.get("properties", {})
        if not isinstance(properties, dict) or any(
            isinstance(value, dict | list) for value in properties.values()
        ):
            raise BadRequest("properties must be an object of scalar values", "properties")
        keys = [body.get(name) for name in ("subscriber_id", "phone", "email") if body.get(name)]
        if not keys:
            raise BadRequest("One of subscriber_id, phone or email is required", "subscriber_id")
        subscriber = next((s for s in map(self._find, map(str, keys)) if s is not None), None)
        if subscriber is None:
            return self.not_found(request, "Subscriber not found")
        event_id = str(uuid.uuid4())
        self._events.append({**body, "id": event_id, "resolved_subscriber_id": subscriber["id"]})
        return Reply(202, {"event_ids": [event_id]})

    def _find(self, identifier: str) -> dict[str, Any] | None:
        if identifier in self._subscribers:
            return self._subscribers[identifier]
        for subscriber in self._subscribers.values():
            if identifier in (subscriber["phone_number"], subscriber["email"]):
                return subscriber
        return None


def _check_properties(properties: Any) -> None:
    if not isinstance(properties, dict):
        raise BadRequest("properties must be an object", "properties")
    for name, value in properties.items():
        if isinstance(value, bool) or value is None:
            raise BadRequest(f"{name}: values are strings, integers or string arrays", name)
        if isinstance(value, int | str):
            continue
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            continue
        raise BadRequest(f"{name}: values are strings, integers or string arrays", name)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
