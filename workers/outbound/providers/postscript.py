"""Postscript's v2 API over httpx.

Postscript has no update-by-phone: the subscriber is looked up (phone first, then email) and
patched by id. Creating a subscriber is an SMS opt-in, so a customer without one is skipped.
Postscript sends no Retry-After on 429 (nor anywhere): the task backs off on its own.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from models.domain.clock import as_utc
from workers.outbound.providers.base import CustomerState, PointsEvent, TransientProviderError
from workers.outbound.providers.client import SyncCall
from workers.outbound.providers.config import EnvSetting
from workers.outbound.providers.http import HttpProvider, json_object
from workers.outbound.providers.payloads import (
    event_properties,
    loyalty_properties_without_nulls,
    without_nulls,
)

log = logging.getLogger(__name__)

OCCURRED_AT_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class PostscriptProvider(HttpProvider):
    name = "postscript"
    base_url_setting = EnvSetting("LOYALTY_POSTSCRIPT_BASE_URL", "https://api.postscript.io")
    rate_limit_setting = EnvSetting("LOYALTY_POSTSCRIPT_RATE_LIMIT", "15/second")

    def authorization(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def error_detail(self, response: httpx.Response) -> str:
        return error_detail(response)

    def push(self, call: SyncCall) -> str:
        state = call.state
        if not state.phone and not state.email:
            return "skipped: no phone or email"
        subscriber_id = self._find_subscriber(call)
        if subscriber_id is None:
            log.info(
                "postscript: no subscriber for customer %s; not opting one in", state.customer_id
            )
            return "skipped: no postscript subscriber"
        if call.push_profile:
            # Postscript values are strings, integers and dates: "" clears a lost tier.
            properties = loyalty_properties_without_nulls(state)
            path = f"/api/v2/subscribers/{subscriber_id}"
            self.send(call, "PATCH", path, json={"properties": properties})
        if call.event is not None:
            self.send(call, "POST", "/api/v2/events", json=event_body(subscriber_id, call.event))
        return "synced"

    def _find_subscriber(self, call: SyncCall) -> str | None:
        for params in subscriber_lookups(call.state):
            response = self.send(call, "GET", "/api/v2/subscribers", params=params)
            try:
                subscribers = response.json()["subscribers"]
                if subscribers:
                    return str(subscribers[0]["id"])
            except (ValueError, TypeError, LookupError):
                raise TransientProviderError(
                    "postscript subscriber lookup returned an unreadable answer",
                    status=response.status_code,
                ) from None
        return None


def subscriber_lookups(state: CustomerState) -> list[dict[str, str]]:
    """Phone first, then email: the queries that may find the customer's subscriber."""
    lookups = []
    if state.phone:
        lookups.append({"phone_number__eq": state.phone})
    if state.email:
        lookups.append({"email__eq": state.email.strip()})
    return lookups


def event_body(subscriber_id: str, event: PointsEvent) -> dict[str, Any]:
    return {
        "type": event.name.replace(" ", ""),
        "subscriber_id": subscriber_id,
        "occurred_at": as_utc(event.occurred_at).strftime(OCCURRED_AT_FORMAT),
        "external_id": event.transaction_id,
        "properties": without_nulls(event_properties(event)),
    }


def error_detail(response: httpx.Response) -> str:
    """``{error_code, error_message}`` mostly; some 400s use ``errors: [{msg}]``."""
    body = json_object(response)
    if body is None:
        return response.text[:300]
    if body.get("error_message"):
        return f"{body['error_message']} (error_code {body.get('error_code')})"
    errors = body.get("errors")
    if isinstance(errors, list):
        return "; ".join(
            str(error.get("msg", error)) for error in errors if isinstance(error, dict)
        )
    return response.text[:300]
