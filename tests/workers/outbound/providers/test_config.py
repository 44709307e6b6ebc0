"""Provider settings from the environment, and the process-wide clients built from them."""

from __future__ import annotations

import pytest

import workers.outbound.providers as providers
from workers.outbound.providers import CLIENTS, PROVIDERS, get_provider
from workers.outbound.providers.config import ProviderSettings
from workers.outbound.providers.klaviyo import KlaviyoProvider
from workers.outbound.providers.omnisend import OmnisendProvider
from workers.outbound.providers.postscript import PostscriptProvider
from workers.settings import settings


def test_defaults_point_at_the_real_providers() -> None:
    settings = ProviderSettings.from_environment({})

    assert settings.base_urls == {
        "klaviyo": "https://a.klaviyo.com",
        "omnisend": "https://api.omnisend.com",
        "postscript": "https://api.postscript.io",
    }
    assert settings.rate_limits == {
        "klaviyo": "75/second;700/minute",
        "omnisend": "400/minute",
        "postscript": "15/second",
    }
    assert settings.rate_limit_storage == "memory://"
    assert (settings.connect_timeout, settings.http_timeout) == (3.0, 10.0)


def test_every_setting_can_be_overridden() -> None:
    settings = ProviderSettings.from_environment(
        {
            "LOYALTY_KLAVIYO_BASE_URL": "http://127.0.0.1:8001/",
            "LOYALTY_OMNISEND_BASE_URL": "http://127.0.0.1:8002//",
            "LOYALTY_POSTSCRIPT_BASE_URL": "http://127.0.0.1:8003",
            "LOYALTY_KLAVIYO_RATE_LIMIT": "3/second;60/minute",
            "LOYALTY_OMNISEND_RATE_LIMIT": "100/minute",
            "LOYALTY_POSTSCRIPT_RATE_LIMIT": "5/second",
            "LOYALTY_RATE_LIMIT_STORAGE": "redis://cache:6379/3",
            "LOYALTY_BROKER_URL": "redis://broker:6379/0",
            "LOYALTY_HTTP_TIMEOUT": "0.5",
        }
    )

    assert settings.base_urls == {
        "klaviyo": "http://127.0.0.1:8001",
        "omnisend": "http://127.0.0.1:8002",
        "postscript": "http://127.0.0.1:8003",
    }
    assert settings.rate_limits == {
        "klaviyo": "3/second;60/minute",
        "omnisend": "100/minute",
        "postscript": "5/second",
    }
    assert settings.rate_limit_storage == "redis://cache:6379/3"
    assert (settings.connect_timeout, settings.http_timeout) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("broker_url", "storage"),
    [
        ("redis://127.0.0.1:6379/14", "redis://127.0.0.1:6379/14"),
        ("rediss://:pw@cache:6380/0", "rediss://:pw@cache:6380/0"),
        ("amqp://guest@rabbit//", "memory://"),
        ("sqla+sqlite:///.loyalty/broker.sqlite3", "memory://"),
    ],
)
def test_the_rate_limit_store_defaults_to_a_redis_broker(broker_url: str, storage: str) -> None:
    settings = ProviderSettings.from_environment({"LOYALTY_BROKER_URL": broker_url})

    assert settings.rate_limit_storage == storage


@pytest.mark.parametrize("timeout", ["soon", "0", "-1"])
def test_a_bad_timeout_is_refused(timeout: str) -> None:
    with pytest.raises(ValueError, match="LOYALTY_HTTP_TIMEOUT"):
        ProviderSettings.from_environment({"LOYALTY_HTTP_TIMEOUT": timeout})


def test_get_provider_builds_each_client_once_from_the_process_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(providers, "_instances", {})
    monkeypatch.setenv("LOYALTY_OMNISEND_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("LOYALTY_HTTP_TIMEOUT", "2")

    built = {name: get_provider(name, settings().providers) for name in PROVIDERS}

    assert isinstance(built["klaviyo"], KlaviyoProvider)
    assert isinstance(built["omnisend"], OmnisendProvider)
    assert isinstance(built["postscript"], PostscriptProvider)
    assert [provider.name for provider in built.values()] == list(PROVIDERS)
    assert all(get_provider(name, ProviderSettings()) is built[name] for name in PROVIDERS)
    omnisend = built["omnisend"]
    assert isinstance(omnisend, OmnisendProvider)
    assert omnisend.base_url == "http://127.0.0.1:9"
    assert omnisend.timeout.read == 2.0


def test_the_registry_lists_each_client_under_its_own_name_in_order() -> None:
    assert PROVIDERS == ("klaviyo", "omnisend", "postscript")
    assert [CLIENTS[name].name for name in PROVIDERS] == list(PROVIDERS)


def test_a_client_missing_from_the_settings_uses_its_own_default_base_url() -> None:
    omnisend = OmnisendProvider.from_settings(ProviderSettings())

    assert omnisend.base_url == "https://api.omnisend.com"


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        get_provider("mailchimp", ProviderSettings())
