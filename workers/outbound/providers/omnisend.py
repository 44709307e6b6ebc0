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

from workers.outbound.providers.base import PointsEvent, seconds_from_header
from workers.outbound.providers.client import SyncCall
from workers.outbound.providers.config import EnvSetting
from workers.outbound.providers.http import HttpProvider, json_object
from workers.outbound.providers.payloads import (
    event_properties,
    iso_utc,
    loyalty_properties_without_nulls,
    without_nulls,
)

log = logging.getLogger(__name__)

API_VERSION = "2026-03-15"


class OmnisendProvider(HttpProvider):
    name = "omnisend"
    base_url_setting = EnvSetting("LOYALTY_OMNISEND_BASE_URL", "https://api.omnisend.com")
    rate_limit_setting = EnvSetting("LOYALTY_OMNISEND_RATE_LIMIT", "400/minute")
    default_headers: ClassVar[dict[str, str]] = {
        "Omnisend-Version": API_VERSION,
        "Accept": "application/json",
    }

    def authorization(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Omnisend-API-Key {api_key}"}

    def error_detail(self, response: httpx.Response) -> str:
        return problem_detail(response)

    def retry_after(self, response: httpx.Response) -> float | None:
        return retry_after(response)

    def push(self, call: SyncCall) -> str:
        state = call.state
        if not state.email:
            return "skipped: no email"
        email = state.email  # exactly as stored: Omnisend matches identifiers case-sensitively
        contact = self._find_contact(call, email)
        if contact is None:
            log.info("omnisend: no contact for customer %s; not creating one", state.customer_id)
            return "skipped: no omnisend contact"
        # Omnisend custom properties take no null: "" clears a lost tier.
        wanted = loyalty_properties_without_nulls(state)
        held = contact.get("customProperties") or {}
        changed = call.push_profile and any(
            held.get(name) != value for name, value in wanted.items()
        )
        if changed:
            path = f"/api/contacts/{contact['id']}"
            self.send(call, "PATCH", path, json={"customProperties": wanted})
        if call.event is not None:
            self.send(call, "POST", "/api/events", json=event_body(email, call.event))
        elif not changed:
            return "skipped: omnisend already current"
        return "synced"

    def _find_contact(self, call: SyncCall, email: str) -> dict[str, Any] | None:
        body = self.send(call, "GET", "/api/contacts", params={"email": email}).json()
        contacts = body.get("contacts") if isinstance(body, dict) else None
        found = (c for c in contacts or [] if isinstance(c, dict) and c.get("email") == email)
        return next(found, None)


def event_body(email: str, event: PointsEvent) -> dict[str, Any]:
    return {
        "eventName": event.name.lower(),
        "origin": "api",
        "eventID": str(uuid.UUID(event.transaction_id)),
        "eventTime": iso_utc(event.occurred_at),
        "contact": {"email": email},
        "properties": without_nulls(event_properties(event)),
    }


def retry_after(response: httpx.Response) -> float | None:
    """The 2026-03-15 API puts the wait in the problem body; older answers use headers."""
    if response.status_code == 429:
        body = json_object(response)
        if body is not None:
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
    body = json_object(response)
    if body is None:
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
