"""The account and the adjustment as every provider's payloads carry them: UTC times and the
loyalty properties, with or without nulls depending on what the provider accepts."""

from __future__ import annotations

from datetime import datetime

from models.domain.clock import as_utc
from workers.outbound.providers.base import CustomerState, PointsEvent


def iso_utc(moment: datetime) -> str:
    """``2025-01-01T12:00:00Z``: the form every provider documents and parses."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def loyalty_properties(state: CustomerState) -> dict[str, object]:
    """The absolute account state as custom properties; ``None`` means "not set"."""
    return {
        "loyalty_points_balance": state.balance,
        "loyalty_lifetime_points": state.lifetime_points,
        "loyalty_vip_tier": state.tier,
        "loyalty_last_activity_at": (
            iso_utc(state.last_activity_at) if state.last_activity_at is not None else None
        ),
        "loyalty_revision": state.revision,
        "loyalty_points_expiring": state.points_expiring,
        "loyalty_points_expiration_date": (
            iso_utc(state.points_expiration_date)
            if state.points_expiration_date is not None
            else None
        ),
    }


def loyalty_properties_without_nulls(state: CustomerState) -> dict[str, object]:
    """For providers whose properties take no null (Omnisend: none at all; Postscript: strings,
    integers and dates): "" clears a lost tier or a passed expiration date, and a last-activity
    time that never existed is left out."""
    properties = loyalty_properties(state)
    for cleared in ("loyalty_vip_tier", "loyalty_points_expiration_date"):
        if properties[cleared] is None:
            properties[cleared] = ""
    return without_nulls(properties)


def event_properties(event: PointsEvent) -> dict[str, object]:
    properties: dict[str, object] = {
        "points": event.points,
        "new_balance": event.balance_after,
        "lifetime_points": event.lifetime_after,
        "vip_tier": event.tier,
        "reason": event.note,
    }
    if event.expires_at is not None:
        properties["expiration_date"] = iso_utc(event.expires_at)
    return properties


def without_nulls(properties: dict[str, object]) -> dict[str, object]:
    """The properties that have a value: an unset one is left out rather than sent as null."""
    return {name: value for name, value in properties.items() if value is not None}
