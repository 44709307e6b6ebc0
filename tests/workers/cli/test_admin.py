"""The operator commands for tiers, integrations and dead letters, against the test database."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from models.persistence.tables import integrations, outbox
from workers.cli.main import main
from workers.outbound.secrets import SecretBox

API_KEY = "pk_live_0123456789abcdef"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LOYALTY_SECRET_KEY", "admin-cli-test-secret")
    return CliRunner()


@pytest.fixture
def shop(cli: CliRunner, engine: Engine) -> str:
    shop_id = f"admin-{uuid.uuid4().hex[:8]}"
    result = cli.invoke(main, ["shop", "create", shop_id, "--email-from", "Shop <hi@shop.example>"])
    assert result.exit_code == 0, result.output
    return shop_id


def test_a_shop_sender_must_be_an_address(cli: CliRunner, engine: Engine) -> None:
    result = cli.invoke(main, ["shop", "create", "x-shop", "--email-from", "not an address"])

    assert result.exit_code == 2
    assert "--email-from" in result.output
    assert "not an email address" in result.output


def test_shop_update_changes_name_and_sender(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(
        main, ["shop", "update", shop, "--name", "Tea", "--email-from", "tea@shop.example"]
    )

    assert result.exit_code == 0, result.output
    assert "name 'Tea', emails from 'tea@shop.example'" in result.output
    assert cli.invoke(main, ["shop", "update", "no-such-shop", "--name", "x"]).exit_code == 1


def test_tiers_are_set_moved_listed_and_deleted(cli: CliRunner, shop: str, engine: Engine) -> None:
    assert "created at 1000" in cli.invoke(main, ["tier", "set", shop, "Gold", "1000"]).output
    assert "moved at 800" in cli.invoke(main, ["tier", "set", shop, "Gold", "800"]).output
    cli.invoke(main, ["tier", "set", shop, "Silver", "100"])

    listing = cli.invoke(main, ["tier", "list", shop]).output.splitlines()
    deleted = cli.invoke(main, ["tier", "delete", shop, "Silver"])
    missing = cli.invoke(main, ["tier", "delete", shop, "Silver"])

    assert [line.split()[0] for line in listing] == ["Silver", "Gold"]
    assert "800 lifetime points, 0 members" in listing[1]
    assert deleted.exit_code == 0
    assert missing.exit_code == 1
    assert "no tier 'Silver'" in missing.output
    with engine.connect() as connection:
        recalculations = connection.execute(
            select(outbox.c.task_name).where(outbox.c.shop_id == shop)
        ).scalars()
        assert set(recalculations) == {"loyalty.recalculate_shop_tiers"}


def test_a_tier_needs_a_known_shop_and_a_threshold_of_zero_or_more(
    cli: CliRunner, shop: str
) -> None:
    unknown = cli.invoke(main, ["tier", "set", "no-such-shop", "Gold", "10"])
    negative = cli.invoke(main, ["tier", "set", shop, "Gold", "-1"])

    assert unknown.exit_code == 1
    assert "shop 'no-such-shop' not found" in unknown.output
    assert negative.exit_code == 2


def test_an_api_key_is_stored_encrypted_and_only_shown_masked(
    cli: CliRunner, shop: str, engine: Engine
) -> None:
    enabled = cli.invoke(main, ["integration", "enable", shop, "klaviyo", "--api-key", API_KEY])
    listing = cli.invoke(main, ["integration", "list", shop])

    assert enabled.exit_code == 0, enabled.output
    assert API_KEY not in enabled.output + listing.output
    assert "klaviyo     enabled   key …cdef" in listing.output
    with engine.connect() as connection:
        stored = connection.execute(
            select(integrations.c.encrypted_api_key).where(integrations.c.shop_id == shop)
        ).scalar_one()
    assert API_KEY not in stored
    assert SecretBox(["admin-cli-test-secret"]).decrypt(stored) == API_KEY


def test_disabling_keeps_the_integration_listed(cli: CliRunner, shop: str) -> None:
    cli.invoke(main, ["integration", "enable", shop, "omnisend", "--api-key", API_KEY])

    disabled = cli.invoke(main, ["integration", "disable", shop, "omnisend"])
    never = cli.invoke(main, ["integration", "disable", shop, "postscript"])

    assert disabled.exit_code == 0
    assert "omnisend    disabled" in cli.invoke(main, ["integration", "list", shop]).output
    assert never.exit_code == 1


def test_enabling_without_a_secret_key_says_how_to_make_one(
    cli: CliRunner, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOYALTY_SECRET_KEY")

    result = cli.invoke(main, ["integration", "enable", shop, "klaviyo", "--api-key", API_KEY])

    assert result.exit_code == 1
    assert "LOYALTY_SECRET_KEY is not set" in result.output
    assert API_KEY not in result.output


def test_an_unknown_provider_is_refused(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(main, ["integration", "enable", shop, "mailchimp", "--api-key", "k"])

    assert result.exit_code == 2
    assert "'mailchimp' is not one of 'klaviyo', 'omnisend', 'postscript'" in result.output


def test_replay_needs_ids_or_all(cli: CliRunner, engine: Engine) -> None:
    neither = cli.invoke(main, ["dead-letters", "replay"])
    both = cli.invoke(main, ["dead-letters", "replay", "1", "--all"])

    assert neither.exit_code == both.exit_code == 2
    assert "give dead letter ids or --all" in neither.output
