"""The ``loyalty`` CLI against the test database and a real worker."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from workers.cli.main import main
from workers.process import WorkerProcess


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def shop(cli: CliRunner, engine: object) -> str:
    shop_id = f"cli-{uuid.uuid4().hex[:8]}"
    result = cli.invoke(main, ["shop", "create", shop_id, "--name", "CLI shop"])
    assert result.exit_code == 0, result.output
    assert f"shop {shop_id} created" in result.output
    return shop_id


def test_db_upgrade_is_idempotent(cli: CliRunner, engine: object) -> None:
    result = cli.invoke(main, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "database at head" in result.output


def test_creating_a_shop_twice_says_so(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(main, ["shop", "create", shop])

    assert result.exit_code == 0
    assert "already exists" in result.output


@pytest.mark.e2e
def test_adjust_and_wait_prints_the_result(
    cli: CliRunner, shop: str, worker: WorkerProcess
) -> None:
    created = cli.invoke(
        main, ["customer", "upsert", shop, "ada", "--email", "ada@example.com", "--wait"]
    )
    assert created.exit_code == 0, created.output

    added = cli.invoke(
        main, ["adjust", shop, "ada", "--adjustment", "250", "--note", "Hi", "--wait"]
    )
    refused = cli.invoke(
        main,
        [
            "adjust",
            shop,
            "ada",
            "--adjustment",
            "-300",
            "--on-insufficient-points",
            "reject",
            "--wait",
        ],
    )
    floored = cli.invoke(main, ["adjust", shop, "ada", "--adjustment", "-300", "--wait"])
    shown = cli.invoke(main, ["account", "show", shop, "ada", "--json"])

    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["data"]["attributes"]["current_points"] == 250
    assert refused.exit_code == 1
    assert json.loads(refused.output)["error"]["code"] == "insufficient_points"
    assert json.loads(floored.output)["data"]["attributes"]["applied_adjustment"] == -250
    account = json.loads(shown.output)
    assert (account["balance"], account["revision"], account["email"]) == (0, 2, "ada@example.com")
    assert [e["applied"] for e in account["ledger"]] == [-250, 250]
    assert account["ledger"][1]["note"] == "Hi"
    assert account["ledger"][1]["source"] == "cli"


@pytest.mark.e2e
def test_balance_command_and_readable_account(
    cli: CliRunner, shop: str, worker: WorkerProcess
) -> None:
    cli.invoke(main, ["customer", "upsert", shop, "bo", "--wait"])

    result = cli.invoke(main, ["adjust", shop, "bo", "--balance", "1200", "--wait"])
    shown = cli.invoke(main, ["account", "show", shop, "bo"])

    assert result.exit_code == 0, result.output
    assert "balance 1200  lifetime 1200" in shown.output
    assert "revision 1" in shown.output
    assert "+1200 (asked +1200)  0 -> 1200" in shown.output


@pytest.mark.e2e
def test_reverse_and_wait_prints_the_reversal_and_the_ledger_links_it(
    cli: CliRunner, shop: str, worker: WorkerProcess
) -> None:
    cli.invoke(main, ["customer", "upsert", shop, "cy", "--wait"])
    order = json.loads(
        cli.invoke(main, ["adjust", shop, "cy", "--adjustment", "400", "--wait"]).output
    )

    reversed_ = cli.invoke(
        main,
        ["reverse", shop, "cy", order["transaction_id"], "--points", "150", "--note", "Refund",
         "--wait"],
    )  # fmt: skip
    too_much = cli.invoke(
        main, ["reverse", shop, "cy", order["transaction_id"], "--points", "251", "--wait"]
    )
    shown = json.loads(cli.invoke(main, ["account", "show", shop, "cy", "--json"]).output)
    history = cli.invoke(main, ["account", "history", shop, "cy"])

    assert reversed_.exit_code == 0, reversed_.output
    assert json.loads(reversed_.output)["data"]["attributes"]["remaining_reversible"] == 250
    assert too_much.exit_code == 1
    assert json.loads(too_much.output)["error"]["code"] == "reversal_exceeds_remaining"
    assert shown["balance"] == 250
    assert [(e["kind"], e["applied"]) for e in shown["ledger"]] == [
        ("reverse", -150),
        ("adjust", 400),
    ]
    assert shown["ledger"][0]["reverses_transaction_id"] == order["transaction_id"]
    assert f"reverses transaction {order['transaction_id']}" in history.output


def test_reverse_refuses_a_transaction_id_that_is_not_one(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(main, ["reverse", shop, "cy", "order-1001"])

    assert result.exit_code == 1
    assert "transaction_id: must be a transaction id (a UUID)" in result.output
    assert "nothing was sent" in result.output


def test_adjust_needs_an_amount_or_a_balance(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(main, ["adjust", shop, "ada"])

    assert result.exit_code == 2
    assert "--adjustment N or --balance N" in result.output


def test_adjust_without_wait_only_publishes(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(
        main, ["adjust", shop, "nobody", "--adjustment", "5", "--command-id", "cli-publish-1"]
    )

    assert result.exit_code == 0, result.output
    assert "published command cli-publish-1" in result.output


def test_showing_an_unknown_customer_fails_clearly(cli: CliRunner, shop: str) -> None:
    result = cli.invoke(main, ["account", "show", shop, "nobody"])

    assert result.exit_code == 1
    assert f"no customer 'nobody' in shop '{shop}'" in result.output
