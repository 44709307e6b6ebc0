"""Omnisend's 2026-03-15 REST API over httpx.

Only contacts that already exist are touched. The contact is looked up read-only (``GET
/api/contacts?email=``, the email exactly as stored: Omnisend's identifiers are case-sensitive);
none means nothing is sent, since an event names its contact by email and Omnisend would create
the contact from it. The loyalty properties are written (``PATCH /api/contacts/{id}``, which never
touches consent) only when they differ from what the contact holds, so a burst of adjustments,
already coalesced by the sync delay, costs Omnisend few writes. An event's ``eventID`` is the
transaction id itself (a UUID): an operator finds the event of a transaction by it, and with the
fixed ``eventTime`` it is what Omnisend deduplicates a resent event on.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar

import httpx

from workers.outbound.providers.base import (
    CustomerState,
    PointsEvent,
    Throttle,
    error_for_status,
    event_properties,
    iso_utc,
    loyalty_properties,
    redact,
    seconds_from_header,
)
from workers.outbound.providers.http import HttpProvider

log = logging.getLogger(__name__)

API_VERSION = "2026-03-15"
EVENT_NAME = "loyalty points adjusted"


class OmnisendProvider(HttpProvider):
    name = "omnisend"
    default_headers: ClassVar[dict[str, str]] = {
        "Omnisend-Version": API_VERSION,
        "Accept": "application/json",
    }

    def authorization(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Omnisend-API-Key {api_key}"}

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
        if not state.email:
            return "skipped: no email"
        email = state.email  # exactly as stored: Omnisend matches identifiers case-sensitively
        contact = self._find_contact(api_key, throttle, email)
        if contact is None:
            log.info("omnisend: no contact for customer %s; not creating one", state.customer_id)
            return "skipped: no omnisend contact"
        wanted = custom_properties(state)
        held = contact.get("customProperties") or {}
        changed = push_profile and any(held.get(name) != value for name, value in wanted.items())
        if changed:
            path = f"/api/contacts/{contact['id']}"
            self._send(api_key, throttle, "PATCH", path, json={"customProperties": wanted})
        if event is not None:
            self._send(api_key, throttle, "POST", "/api/events", json=event_body(email, event))
        return "synced" if changed or event is not None else "skipped: omnisend already current"

    def _find_contact(self, api_key: str, throttle: Throttle, email: str) -> dict[str, Any] | None:
        body = self._send(api_key, throttle, "GET", "/api/contacts", params={"email": email}).json()
        contacts = body.get("contacts") if isinstance(body, dict) else None
        found = (c for c in contacts or [] if isinstance(c, dict) and c.get("email") == email)
        return next(found, None)

    def _send(
        self,
        api_key: str,
        throttle: Throttle,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        response = self.request(api_key, throttle, method, path, params=params, json=json)
        if response.is_success:
            return response
        raise error_for_status(
            "omnisend",
            response.status_code,
            redact(problem_detail(response), api_key),
            retry_after=retry_after(response),
        )


def custom_properties(state: CustomerState) -> dict[str, object]:
    """Omnisend custom properties take no null: an absent tier is sent as "" so a lost tier is
    cleared, and a last-activity time that never existed is left out."""
    properties = loyalty_properties(state)
    if properties["loyalty_vip_tier"] is None:
        properties["loyalty_vip_tier"] = ""
    return {name: value for name, value in properties.items() if value is not None}


def event_body(email: str, event: PointsEvent) -> dict[str, Any]:
    return {
        "eventName": EVENT_NAME,
        "origin": "api",
        "eventID": str(uuid.UUID(event.transaction_id)),
        "eventTime": iso_utc(event.occurred_at),
        "contact": {"email": email},
        "properties": {
            name: value for name, value in event_properties(event).items() if value is not None
        },
    }


def retry_after(response: httpx.Response) -> float | None:
    """The 2026-03-15 API puts the wait in the problem body; older answers use headers."""
    if response.status_code == 429:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            from_body = seconds_from_header(body.get("retryAfter"))
            if from_body is not None:
                return from_body
        for header in ("Retry-After", "X-Rate-Limit-Reset"):
            from_header = seconds_from_header(response.headers.get(header))
            if from_header is not None:
                return from_header
        return None
    return seconds_from_header(response.headers.get("Retry-After"))


def problem_detail(response: httpx.Response) -> str:
    """RFC 9457 problem bodies: ``title``, ``detail`` and, on 400, per-field ``errors``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict):
        return response.text[:300]
    parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
    errors = body.get("errors")
    if isinstance(errors, list):
        parts += [
            f"{error.get('field', '?')}: {error.get('message', '')}"
            for error in errors
            if isinstance(error, dict)
        ]
    return "; ".join(parts)
