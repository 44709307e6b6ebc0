"""Postscript's v2 API over httpx.

Postscript has no update-by-phone: the subscriber is looked up (phone first, then email) and
patched by id. Creating a subscriber is an SMS opt-in, so a customer without one is skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from workers.outbound.providers.base import (
    CustomerState,
    PointsEvent,
    Throttle,
    TransientProviderError,
    as_utc,
    error_for_status,
    event_properties,
    loyalty_properties,
    redact,
)
from workers.outbound.providers.http import HttpProvider

log = logging.getLogger(__name__)

EVENT_TYPE = "LoyaltyPointsAdjusted"
OCCURRED_AT_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class PostscriptProvider(HttpProvider):
    name = "postscript"

    def authorization(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

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
        if not state.phone and not state.email:
            return "skipped: no phone or email"
        subscriber_id = self._find_subscriber(api_key, state, throttle)
        if subscriber_id is None:
            log.info(
                "postscript: no subscriber for customer %s; not opting one in", state.customer_id
            )
            return "skipped: no postscript subscriber"
        if push_profile:
            self._send(
                api_key,
                throttle,
                "PATCH",
                f"/api/v2/subscribers/{subscriber_id}",
                json={"properties": subscriber_properties(state)},
            )
        if event is not None:
            self._send(
                api_key, throttle, "POST", "/api/v2/events", json=event_body(subscriber_id, event)
            )
        return "synced"

    def _find_subscriber(
        self, api_key: str, state: CustomerState, throttle: Throttle
    ) -> str | None:
        lookups = []
        if state.phone:
            lookups.append({"phone_number__eq": state.phone})
        if state.email:
            lookups.append({"email__eq": state.email.strip()})
        for params in lookups:
            response = self._send(api_key, throttle, "GET", "/api/v2/subscribers", params=params)
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
        # Postscript sends no Retry-After on 429 (nor anywhere): the task backs off on its own.
        raise error_for_status(
            "postscript", response.status_code, redact(error_detail(response), api_key)
        )


def subscriber_properties(state: CustomerState) -> dict[str, object]:
    """Postscript values are strings, integers and dates: "" clears a lost tier, and a
    last-activity time that never existed is left out."""
    properties = loyalty_properties(state)
    if properties["loyalty_vip_tier"] is None:
        properties["loyalty_vip_tier"] = ""
    return {name: value for name, value in properties.items() if value is not None}


def event_body(subscriber_id: str, event: PointsEvent) -> dict[str, Any]:
    return {
        "type": EVENT_TYPE,
        "subscriber_id": subscriber_id,
        "occurred_at": as_utc(event.occurred_at).strftime(OCCURRED_AT_FORMAT),
        "external_id": event.transaction_id,
        "properties": {
            name: value for name, value in event_properties(event).items() if value is not None
        },
    }


def error_detail(response: httpx.Response) -> str:
    """``{error_code, error_message}`` mostly; some 400s use ``errors: [{msg}]``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(body, dict):
        return response.text[:300]
    if body.get("error_message"):
        return f"{body['error_message']} (error_code {body.get('error_code')})"
    errors = body.get("errors")
    if isinstance(errors, list):
        return "; ".join(
            str(error.get("msg", error)) for error in errors if isinstance(error, dict)
        )
    return response.text[:300]
