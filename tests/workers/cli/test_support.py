"""The support commands (``account history``, ``commands show``) against the test database, each
test in a rolled-back transaction; the data is made by the real command handlers."""

from __future__ import annotations

import json
import shlex
import uuid
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, select

from models.domain.command_log import MAX_REJECTED_PAYLOAD
from models.domain.names import RECALCULATE_TIER
from models.persistence.tables import outbox
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tasks.tiers import recalculate_tier
from tests.support.factories import adjustment, create_customer, create_shop
from workers.cli.main import main
from workers.cli.support import REFUSED_ATTEMPTS_SHOWN


@pytest.fixture
def shop(uow: UnitOfWork, shop_id: str) -> str:
    create_shop(uow, shop_id)
    create_customer(uow, shop_id, "ada", email="ada@example.com")
    return shop_id


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def adjust(uow: UnitOfWork, shop: str, **fields: Any) -> dict[str, Any]:
    return command_engine.adjust_points(uow, adjustment(shop, "ada", **fields))


def history_json(*args: str) -> dict[str, Any]:
    result = run("account", "history", *args, "--json")
    assert result.exit_code == 0, result.output
    view: dict[str, Any] = json.loads(result.output)
    return view


class TestAccountHistory:
    def test_pages_return_every_entry_once_newest_first(self, uow: UnitOfWork, shop: str) -> None:
        sent = [adjust(uow, shop, adjustment=10 * n)["command_id"] for n in range(1, 8)]

        pages = [history_json(shop, "ada", "--limit", "3")]
        while pages[-1]["next_before"] is not None:
            before = str(pages[-1]["next_before"])
            pages.append(history_json(shop, "ada", "--limit", "3", "--before", before))

        assert [len(page["entries"]) for page in pages] == [3, 3, 1]
        listed = [entry["command_id"] for page in pages for entry in page["entries"]]
        assert listed == sent[::-1]
        ids = [entry["id"] for page in pages for entry in page["entries"]]
        assert ids == sorted(ids, reverse=True)

    def test_a_full_last_page_says_there_is_nothing_more(self, uow: UnitOfWork, shop: str) -> None:
        for n in (1, 2):
            adjust(uow, shop, adjustment=n)

        page = history_json(shop, "ada", "--limit", "2")

        assert len(page["entries"]) == 2
        assert page["next_before"] is None

    def test_the_printed_next_page_command_continues_the_listing(
        self, uow: UnitOfWork, shop: str
    ) -> None:
        sent = [adjust(uow, shop, adjustment=n, note=f"step {n}")["command_id"] for n in (1, 2, 3)]

        first = run("account", "history", shop, "ada", "--limit", "2")
        next_command = first.output.splitlines()[-1].removeprefix("more entries: ")
        second = run(*shlex.split(next_command)[1:])  # without the leading "loyalty"
        third = run("account", "history", shop, "ada", "--before", "1")

        assert first.exit_code == 0, first.output
        assert sent[2] in first.output
        assert sent[1] in first.output
        assert sent[0] not in first.output
        assert first.output.index("step 3") < first.output.index("step 2")
        assert second.exit_code == 0, second.output
        assert sent[0] in second.output
        assert "step 1" in second.output
        assert "more entries" not in second.output
        assert "no ledger entries older than entry 1" in third.output

    def test_json_has_every_field_of_an_entry_and_the_tier_it_caused(
        self, uow: UnitOfWork, connection: Connection, shop: str
    ) -> None:
        with uow:
            uow.tiers.set(shop, "Gold", 100)
            uow.commit()
        added = adjust(uow, shop, adjustment=150, note="Goodwill", source="support", actor="agent")
        tier_recalculation = connection.execute(
            select(outbox.c.id).where(
                outbox.c.shop_id == shop, outbox.c.task_name == RECALCULATE_TIER
            )
        ).scalar_one()
        recalculate_tier(tier_recalculation)
        floored = adjust(uow, shop, adjustment=-500, update_lifetime_points=False)

        view = history_json(shop, "ada")

        assert set(view) == {"shop_id", "customer_id", "entries", "next_before"}
        assert (view["shop_id"], view["customer_id"], view["next_before"]) == (shop, "ada", None)
        newest, oldest = view["entries"]
        assert newest["id"] > oldest["id"]
        assert isinstance(oldest.pop("id"), int)
        assert oldest.pop("at").endswith("Z")
        assert oldest.pop("tier_changes")[0] | {"at": None} == {
            "from": None,
            "to": "Gold",
            "at": None,
        }
        assert oldest == {
            "transaction_id": added["transaction_id"],
            "kind": "adjust",
            "reverses_transaction_id": None,
            "command_id": added["command_id"],
            "requested": 150,
            "applied": 150,
            "balance_before": 0,
            "balance_after": 150,
            "lifetime_before": 0,
            "lifetime_after": 150,
            "note": "Goodwill",
            "source": "support",
            "actor": "agent",
        }
        assert newest["transaction_id"] == floored["transaction_id"]
        assert (newest["requested"], newest["applied"]) == (-500, -150)
        assert (newest["balance_before"], newest["balance_after"]) == (150, 0)
        assert (newest["lifetime_before"], newest["lifetime_after"]) == (150, 150)
        assert (newest["note"], newest["source"], newest["actor"]) == (None, None, None)
        assert newest["tier_changes"] == []

    def test_text_shows_the_movement_and_who_made_it(self, uow: UnitOfWork, shop: str) -> None:
        added = adjust(uow, shop, adjustment=40, note="Birthday", source="crm", actor="agent-7")

        result = run("account", "history", shop, "ada")

        assert result.exit_code == 0, result.output
        assert "+40 (asked +40)  balance 0 -> 40  lifetime 0 -> 40" in result.output
        assert f"transaction {added['transaction_id']}" in result.output
        assert f"command {added['command_id']}" in result.output
        assert "source crm  actor agent-7" in result.output
        assert "note: Birthday" in result.output
        assert "more entries" not in result.output

    def test_an_unknown_customer_is_an_error_naming_shop_and_customer(self, shop: str) -> None:
        result = run("account", "history", shop, "nobody")

        assert result.exit_code == 1
        assert f"no customer 'nobody' in shop '{shop}'" in result.output

    def test_the_page_size_is_bounded(self, shop: str) -> None:
        assert run("account", "history", shop, "ada", "--limit", "501").exit_code == 2
        assert run("account", "history", shop, "ada", "--limit", "0").exit_code == 2


def show_json(shop: str, command_id: str) -> dict[str, Any]:
    result = run("commands", "show", shop, command_id, "--json")
    assert result.exit_code == 0, result.output
    view: dict[str, Any] = json.loads(result.output)
    return view


class TestCommandsShow:
    def test_an_applied_command_shows_its_stored_result(self, uow: UnitOfWork, shop: str) -> None:
        applied = adjust(uow, shop, adjustment=75)

        view = show_json(shop, applied["command_id"])
        text = run("commands", "show", shop, applied["command_id"])

        assert view["stored"]["command_type"] == "adjust_points"
        assert view["stored"]["status"] == "applied"
        assert view["stored"]["at"].endswith("Z")
        assert view["stored"]["result"] == applied
        assert view["refused_attempts"] == []
        assert view["older_refused_attempts_omitted"] is False
        assert text.exit_code == 0, text.output
        assert "adjust_points applied at" in text.output
        assert f"transaction {applied['transaction_id']}: customer ada" in text.output
        assert "+75 (asked +75)  balance 0 -> 75" in text.output

    def test_a_rejected_command_shows_why(self, uow: UnitOfWork, shop: str) -> None:
        refused = adjust(uow, shop, adjustment=-10, on_insufficient_points="reject")

        view = show_json(shop, refused["command_id"])
        text = run("commands", "show", shop, refused["command_id"])

        assert view["stored"]["status"] == "rejected"
        assert view["stored"]["result"] == refused
        assert text.exit_code == 0, text.output
        assert "adjust_points rejected at" in text.output
        assert "insufficient_points (422)" in text.output

    def test_invalid_attempts_are_listed_newest_first_with_contact_details_masked(
        self, uow: UnitOfWork, shop: str
    ) -> None:
        command_id = f"upsert-{uuid.uuid4()}"
        invalid = {
            "command_id": command_id,
            "shop_id": shop,
            "customer_id": "bo",
            "email": "bo.person@example.com",
            "phone": "+15551234567",
        }
        command_engine.upsert_customer(uow, invalid | {"nickname": "Bo"})
        command_engine.upsert_customer(uow, invalid | {"excluded": "yes"})

        view = show_json(shop, command_id)
        text = run("commands", "show", shop, command_id)

        assert view["stored"] is None
        newest, oldest = view["refused_attempts"]
        assert newest["id"] > oldest["id"]
        assert [attempt["code"] for attempt in (newest, oldest)] == ["invalid_command"] * 2
        assert newest["payload"]["excluded"] == "yes"
        assert oldest["payload"]["nickname"] == "Bo"
        assert newest["result"]["error"]["details"]["errors"][0]["field"] == "excluded"
        for attempt in (newest, oldest):
            assert attempt["payload"]["customer_id"] == "bo"
            assert attempt["payload"]["email"] not in (None, invalid["email"])
            assert attempt["payload"]["phone"] not in (None, invalid["phone"])
        assert text.exit_code == 0, text.output
        assert "never stored" in text.output
        assert text.output.index("excluded") < text.output.index("nickname")
        for output in (text.output, json.dumps(view)):
            assert "bo.person" not in output
            assert "5551234567" not in output

    def test_a_fixed_resend_shows_the_result_and_the_refused_attempt(
        self, uow: UnitOfWork, shop: str
    ) -> None:
        command_id = f"upsert-{uuid.uuid4()}"
        fixed = {"command_id": command_id, "shop_id": shop, "customer_id": "bo"}
        fixed |= {"email": "bo.person@example.com"}
        command_engine.upsert_customer(uow, fixed | {"nickname": "Bo"})
        command_engine.upsert_customer(uow, fixed)

        view = show_json(shop, command_id)

        assert view["stored"]["command_type"] == "upsert_customer"
        assert view["stored"]["status"] == "applied"
        assert view["stored"]["result"]["customer"]["customer_id"] == "bo"
        assert [attempt["code"] for attempt in view["refused_attempts"]] == ["invalid_command"]
        assert "bo.person" not in json.dumps(view)

    def test_only_the_newest_refused_attempts_are_shown(self, uow: UnitOfWork, shop: str) -> None:
        command_id = f"upsert-{uuid.uuid4()}"
        for attempt in range(REFUSED_ATTEMPTS_SHOWN + 1):
            command_engine.upsert_customer(
                uow,
                {"command_id": command_id, "shop_id": shop, "customer_id": "bo", "n": attempt},
            )

        view = show_json(shop, command_id)
        text = run("commands", "show", shop, command_id)

        shown = [attempt["payload"]["n"] for attempt in view["refused_attempts"]]
        assert shown == list(range(REFUSED_ATTEMPTS_SHOWN, 0, -1))
        assert view["older_refused_attempts_omitted"] is True
        assert f"only the newest {REFUSED_ATTEMPTS_SHOWN} attempts" in text.output

    def test_a_payload_too_large_to_keep_shows_its_cut_text_masked(
        self, uow: UnitOfWork, shop: str
    ) -> None:
        command_id = f"huge-{uuid.uuid4()}"
        command_engine.adjust_points(
            uow,
            adjustment(shop, "ada", command_id=command_id, note="ada@example.com " * 10_000),
        )

        (attempt,) = show_json(shop, command_id)["refused_attempts"]

        assert attempt["payload_truncated"] is True
        assert len(attempt["payload"]) <= MAX_REJECTED_PAYLOAD
        assert attempt["payload"].startswith('{"command_id": ')
        assert "ada@example.com" not in attempt["payload"]

    def test_an_unknown_command_is_an_error(self, shop: str) -> None:
        result = run("commands", "show", shop, "no-such-command")

        assert result.exit_code == 1
        assert f"no command 'no-such-command' in shop '{shop}'" in result.output
