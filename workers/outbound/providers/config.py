"""Where the provider clients send their requests, how fast, and how long they wait.

Every setting comes from the environment so tests and staging can point the clients at local
fakes (``LOYALTY_*_BASE_URL``) and shrink the timeouts without touching code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

CONNECT_TIMEOUT_CAP = 3.0


@dataclass(frozen=True)
class ProviderSettings:
    klaviyo_base_url: str = "https://a.klaviyo.com"
    omnisend_base_url: str = "https://api.omnisend.com"
    postscript_base_url: str = "https://api.postscript.io"
    # The ``limits`` library's notation; every ";"-separated window must hold.
    klaviyo_rate_limit: str = "75/second;700/minute"
    omnisend_rate_limit: str = "400/minute"
    postscript_rate_limit: str = "15/second"
    rate_limit_storage: str = "memory://"
    http_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.http_timeout > 0:
            raise ValueError(f"LOYALTY_HTTP_TIMEOUT must be positive, got {self.http_timeout!r}")
        for name in ("klaviyo_base_url", "omnisend_base_url", "postscript_base_url"):
            # The SDK and httpx join paths onto the base: a trailing slash would double it.
            object.__setattr__(self, name, getattr(self, name).rstrip("/"))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        broker_url = env.get("LOYALTY_BROKER_URL", "")
        shared_storage = (
            broker_url if broker_url.startswith(("redis://", "rediss://")) else "memory://"
        )
        raw_timeout = env.get("LOYALTY_HTTP_TIMEOUT", "")
        try:
            http_timeout = float(raw_timeout) if raw_timeout else defaults.http_timeout
        except ValueError:
            raise ValueError(
                f"LOYALTY_HTTP_TIMEOUT must be a number of seconds, got {raw_timeout!r}"
            ) from None
        return cls(
            klaviyo_base_url=env.get("LOYALTY_KLAVIYO_BASE_URL", defaults.klaviyo_base_url),
            omnisend_base_url=env.get("LOYALTY_OMNISEND_BASE_URL", defaults.omnisend_base_url),
            postscript_base_url=env.get(
                "LOYALTY_POSTSCRIPT_BASE_URL", defaults.postscript_base_url
            ),
            klaviyo_rate_limit=env.get("LOYALTY_KLAVIYO_RATE_LIMIT", defaults.klaviyo_rate_limit),
            omnisend_rate_limit=env.get(
                "LOYALTY_OMNISEND_RATE_LIMIT", defaults.omnisend_rate_limit
            ),
            postscript_rate_limit=env.get(
                "LOYALTY_POSTSCRIPT_RATE_LIMIT", defaults.postscript_rate_limit
            ),
            rate_limit_storage=env.get("LOYALTY_RATE_LIMIT_STORAGE", shared_storage),
            http_timeout=http_timeout,
        )

    @property
    def connect_timeout(self) -> float:
        """A dead host should fail fast; never longer than the whole request may take."""
        return min(CONNECT_TIMEOUT_CAP, self.http_timeout)

    @property
    def rate_limits(self) -> dict[str, str]:
        return {
            "klaviyo": self.klaviyo_rate_limit,
            "omnisend": self.omnisend_rate_limit,
            "postscript": self.postscript_rate_limit,
        }
