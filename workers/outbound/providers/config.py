"""Where the provider clients send their requests, how fast, and how long they wait.

Every setting comes from the environment so tests and staging can point the clients at local
fakes (``LOYALTY_*_BASE_URL``) and shrink the timeouts without touching code. A provider's own
settings (its base URL and rate limit: variable and default) are declared on its client class;
this module reads them for every client in the registry, and the settings all clients share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_HTTP_TIMEOUT = 10.0
CONNECT_TIMEOUT_CAP = 3.0


@dataclass(frozen=True, slots=True)
class EnvSetting:
    """One provider's own setting: the variable that overrides it and its value when unset."""

    variable: str
    default: str

    def read(self, env: Mapping[str, str]) -> str:
        return env.get(self.variable, self.default)


@dataclass(frozen=True)
class ProviderSettings:
    # By provider name; a client missing here uses its own default base URL.
    base_urls: Mapping[str, str] = field(default_factory=dict)
    # By provider name, in the ``limits`` library's notation; every ";"-separated window must hold.
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    rate_limit_storage: str = "memory://"
    http_timeout: float = DEFAULT_HTTP_TIMEOUT

    def __post_init__(self) -> None:
        if not self.http_timeout > 0:
            raise ValueError(f"LOYALTY_HTTP_TIMEOUT must be positive, got {self.http_timeout!r}")
        # The SDK and httpx join paths onto the base: a trailing slash would double it.
        stripped = {name: url.rstrip("/") for name, url in self.base_urls.items()}
        object.__setattr__(self, "base_urls", stripped)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        # Imported here: the registry imports the clients, and they import this module.
        from workers.outbound.providers import CLIENTS

        env = os.environ if environ is None else environ
        clients = CLIENTS.values()
        return cls(
            base_urls={client.name: client.base_url_setting.read(env) for client in clients},
            rate_limits={client.name: client.rate_limit_setting.read(env) for client in clients},
            rate_limit_storage=env.get("LOYALTY_RATE_LIMIT_STORAGE", _broker_storage(env)),
            http_timeout=_http_timeout(env),
        )

    @property
    def connect_timeout(self) -> float:
        """A dead host should fail fast; never longer than the whole request may take."""
        return min(CONNECT_TIMEOUT_CAP, self.http_timeout)


def _broker_storage(env: Mapping[str, str]) -> str:
    """A Redis broker doubles as the shared rate limit store; any other broker cannot."""
    broker_url = env.get("LOYALTY_BROKER_URL", "")
    return broker_url if broker_url.startswith(("redis://", "rediss://")) else "memory://"


def _http_timeout(env: Mapping[str, str]) -> float:
    raw_timeout = env.get("LOYALTY_HTTP_TIMEOUT", "")
    try:
        return float(raw_timeout) if raw_timeout else DEFAULT_HTTP_TIMEOUT
    except ValueError:
        raise ValueError(
            f"LOYALTY_HTTP_TIMEOUT must be a number of seconds, got {raw_timeout!r}"
        ) from None
