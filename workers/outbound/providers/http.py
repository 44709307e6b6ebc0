"""What the two REST clients (Omnisend, Postscript) share: an httpx client per process with
explicit timeouts, the throttle before every request, transport failures made transient, and an
error answer turned into a ProviderError with the provider's own detail and wait."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from workers.outbound.providers.base import (
    PerProcess,
    TransientProviderError,
    describe_failure,
    error_for_status,
    redact,
)
from workers.outbound.providers.client import Provider, SyncCall


class HttpProvider(Provider):
    default_headers: ClassVar[dict[str, str]] = {"Accept": "application/json"}

    def _prepare(self) -> None:
        self.timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        self._client: PerProcess[httpx.Client] = PerProcess(self._build_client)

    def authorization(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def error_detail(self, response: httpx.Response) -> str:
        """What the provider's error body says went wrong."""
        return response.text[:300]

    def retry_after(self, response: httpx.Response) -> float | None:
        """The wait the provider asks for; ``None`` leaves the backoff to the task."""
        return None

    def send(
        self,
        call: SyncCall,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """A successful response. A request that got no answer is transient; an error status is
        transient or permanent by the status."""
        call.throttle()
        try:
            response = self._client.get().request(
                method, path, params=params, json=json, headers=self.authorization(call.api_key)
            )
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{self.name} {method} {path} failed: {describe_failure(exc, call.api_key)}"
            ) from None
        if response.is_success:
            return response
        raise error_for_status(
            self.name,
            response.status_code,
            redact(self.error_detail(response), call.api_key),
            retry_after=self.retry_after(response),
        )

    def close(self) -> None:
        """Close this process's connections (a later sync opens new ones)."""
        client = self._client.take()
        if client is not None:
            client.close()

    def _build_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, timeout=self.timeout, headers=self.default_headers
        )


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body when it is a JSON object; ``None`` when it is anything else."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
