"""What every provider client is: to the sync task, ``sync`` and its contract; to the registry, a
name, its own settings and how it builds itself from them. The rule all clients share (nothing to
send makes no request) is kept here once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

from workers.outbound.providers.base import CustomerState, PointsEvent, Throttle
from workers.outbound.providers.config import DEFAULT_HTTP_TIMEOUT, EnvSetting, ProviderSettings


@dataclass(frozen=True, slots=True)
class SyncCall:
    """One ``sync``'s arguments, handed through a client's steps as one value."""

    api_key: str
    state: CustomerState
    push_profile: bool
    event: PointsEvent | None
    throttle: Throttle


class Provider(ABC):
    """One provider's client, built once per process by the registry (``get_provider``)."""

    name: str  # the registry key: "klaviyo" | "omnisend" | "postscript"
    base_url_setting: ClassVar[EnvSetting]
    # The provider's documented request budget, in the ``limits`` library's notation.
    rate_limit_setting: ClassVar[EnvSetting]

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        connect_timeout: float | None = None,
    ) -> None:
        url = self.base_url_setting.default if base_url is None else base_url
        self.base_url = url.rstrip("/")
        self.read_timeout = float(timeout)
        self.connect_timeout = float(min(connect_timeout or timeout, timeout))
        self._prepare()

    @abstractmethod
    def _prepare(self) -> None:
        """Set up what the client keeps (its connections per process) once the base URL and the
        timeouts are known."""

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> Self:
        return cls(
            settings.base_urls.get(cls.name, cls.base_url_setting.default),
            timeout=settings.http_timeout,
            connect_timeout=settings.connect_timeout,
        )

    def sync(
        self,
        api_key: str,
        state: CustomerState,
        *,
        push_profile: bool,
        event: PointsEvent | None,
        throttle: Throttle,
    ) -> str:
        """Push the profile (when ``push_profile``) and send the event (when given).

        Returns a short outcome for the audit: "synced", or "skipped: <reason>" when the provider
        has no contact to update and must not create one (Postscript never opts anyone in).
        Raises TransientProviderError or PermanentProviderError.
        """
        if not push_profile and event is None:
            return "skipped: nothing to send"
        return self.push(SyncCall(api_key, state, push_profile, event, throttle))

    @abstractmethod
    def push(self, call: SyncCall) -> str:
        """``sync`` once there is something to send."""

    @abstractmethod
    def close(self) -> None:
        """Close this process's connections (a later sync opens new ones)."""
