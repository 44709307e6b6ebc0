"""What the two REST clients (Omnisend, Postscript) share: an httpx client per process with
explicit timeouts, the throttle before every request, and transport failures made transient."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import httpx

from workers.outbound.providers.base import PerProcess, Throttle, TransientProviderError, redact
from workers.outbound.providers.config import ProviderSettings


class HttpProvider:
    name: str
    default_headers: ClassVar[dict[str, str]] = {"Accept": "application/json"}

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = ProviderSettings.http_timeout,
        connect_timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout or timeout, timeout))
        self._client: PerProcess[httpx.Client] = PerProcess(self._build_client)

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> Self:
        return cls(
            getattr(settings, f"{cls.name}_base_url"),
            timeout=settings.http_timeout,
            connect_timeout=settings.connect_timeout,
        )

    def authorization(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def request(
        self,
        api_key: str,
        throttle: Throttle,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The response whatever its status; a request that got no answer is transient."""
        throttle()
        try:
            return self._client.get().request(
                method, path, params=params, json=json, headers=self.authorization(api_key)
            )
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.name} {method} {path} failed: {type(exc).__name__}: "
                f"{redact(str(exc), api_key)[:300]}"
            ) from None

    def close(self) -> None:
        """Close this process's connections (a later sync opens new ones)."""
        client = self._client.take()
        if client is not None:
            client.close()

    def _build_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, timeout=self.timeout, headers=self.default_headers
        )
