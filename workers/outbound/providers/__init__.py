"""The marketing providers a loyalty account is synced to, one process-wide client each.

This is the one registry of providers. Adding one takes its client module (a ``Provider``
subclass declaring its name, base URL and rate limit settings) and its entry below.
"""

from __future__ import annotations

import threading

from workers.outbound.providers.client import Provider
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.providers.klaviyo import KlaviyoProvider
from workers.outbound.providers.omnisend import OmnisendProvider
from workers.outbound.providers.postscript import PostscriptProvider

# Each client class by its name, in the order the providers are listed everywhere.
CLIENTS: dict[str, type[Provider]] = {
    client.name: client for client in (KlaviyoProvider, OmnisendProvider, PostscriptProvider)
}
PROVIDERS: tuple[str, ...] = tuple(CLIENTS)

_lock = threading.Lock()
_instances: dict[str, Provider] = {}


def get_provider(name: str, settings: ProviderSettings) -> Provider:
    """Built from ``settings`` on first use, then kept: one client per provider and process.
    The clients keep their connection pools per process themselves, so an instance made before
    a fork stays safe to use after it."""
    client = CLIENTS.get(name)
    if client is None:
        raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(PROVIDERS)}")
    with _lock:
        provider = _instances.get(name)
        if provider is None:
            provider = client.from_settings(settings)
            _instances[name] = provider
        return provider
