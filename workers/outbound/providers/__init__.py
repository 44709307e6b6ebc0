"""The marketing providers a loyalty account is synced to, one process-wide client each."""

from __future__ import annotations

import threading

from workers.outbound.providers.base import Provider
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.providers.klaviyo import KlaviyoProvider
from workers.outbound.providers.omnisend import OmnisendProvider
from workers.outbound.providers.postscript import PostscriptProvider

PROVIDERS = ("klaviyo", "omnisend", "postscript")

_lock = threading.Lock()
_instances: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """Built from the environment on first use. The clients keep their connection pools per
    process themselves, so an instance made before a fork stays safe to use after it."""
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(PROVIDERS)}")
    with _lock:
        provider = _instances.get(name)
        if provider is None:
            provider = _build(name, ProviderSettings.from_environment())
            _instances[name] = provider
        return provider


def _build(name: str, settings: ProviderSettings) -> Provider:
    if name == "klaviyo":
        return KlaviyoProvider.from_settings(settings)
    if name == "omnisend":
        return OmnisendProvider.from_settings(settings)
    return PostscriptProvider.from_settings(settings)
