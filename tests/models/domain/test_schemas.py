"""The committed JSON Schema files are what the models generate, real results produced by the
handlers validate against them, and the command schemas accept and refuse what the models do."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError
from sqlalchemy import Connection, select

from models.domain.commands import AdjustPoints, InvalidCommand, UpsertCustomer, parse_command
from models.domain.errors import ErrorCode
from models.domain.names import RECALCULATE_TIER
from models.domain.results import (
    AdjustmentApplied,
    CommandRejected,
    CustomerUpserted,
    ReversalApplied,
    command_result,
)
from models.persistence.tables import outbox
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tasks.tiers import recalculate_tier
from tests.support.factories import adjustment, create_customer, create_shop, reversal


def _load_generator() -> ModuleType:
    """``scripts/`` is not a package: the generator is loaded from its file."""
    path = Path(__file__).resolve().parents[3] / "scripts" / "generate_schemas.py"
    spec = importlib.util.spec_from_file_location("generate_schemas", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def committed(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((generator.SCHEMA_DIR / name).read_text())
    return loaded


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = committed(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


class TestCommittedFiles:
    def test_regenerating_gives_exactly_the_committed_files(self) -> None:
        generated = generator.generated()
        on_disk = {path.name for path in generator.SCHEMA_DIR.glob("*.json")}

        assert on_disk == set(generated), f"schemas/ differs; regenerate: {generator.REGENERATE}"
        for name, text in generated.items():
            assert (generator.SCHEMA_DIR / name).read_text() == text, (
                f"schemas/{name} is out of date with the models; regenerate it with "
                f"`{generator.REGENERATE}` and commit the result"
            )

    def test_the_generator_writes_the_files(self, tmp_path: Any) -> None:
        written = generator.write(tmp_path / "schemas")

        assert {path.name: path.read_text() for path in written} == generator.generated()

    def test_the_command_schemas_refuse_unknown_fields(self) -> None:
        for name in ("adjust_points.json", "upsert_customer.json", "reverse_adjustment.json"):
            assert committed(name)["additionalProperties"] is False


class Results:
    """Real results, one of every kind, produced by the handlers in one shop."""

    def __init__(self, uow: UnitOfWork, connection: Connection, shop_id: str) -> None:
        self.all: dict[str, dict[str, Any]] = {}
        create_shop(uow, shop_id)
        with uow:
            uow.tiers.set(shop_id, "Gold", 100)
            uow.commit()
        created = command_engine.upsert_customer(uow, self.upsert(shop_id, "ada", email="a@b.co"))
        self.all["upsert created"] = created
        self.all["upsert updated"] = command_engine.upsert_customer(
            uow, self.upsert(shop_id, "ada", phone="+1 555 010 0199", first_name="Ada")
        )
        first = self.adjust(uow, "applied, no tier", adjustment(shop_id, "ada", adjustment=150))
        [owed] = connection.execute(
            select(outbox.c.id).where(
                outbox.c.transaction_id == uuid.UUID(first["data"]["id"]),
                outbox.c.task_name == RECALCULATE_TIER,
            )
        ).scalars()
        recalculate_tier(owed)
        self.adjust(
            uow, "applied with a tier", adjustment(shop_id, "ada", balance=20, note="Reset")
        )
        self.adjust(uow, "floored", adjustment(shop_id, "ada", amount=-50, description="Mug"))
        duplicate = adjustment(shop_id, "ada", adjustment=5)
        self.adjust(uow, "first delivery", duplicate)
        self.adjust(uow, "idempotency_conflict", {**duplicate, "adjustment": 6})
        self.adjust(
            uow,
            "insufficient_points",
            adjustment(shop_id, "ada", adjustment=-999, on_insufficient_points="reject"),
        )
        self.adjust(
            uow, "revision_conflict", adjustment(shop_id, "ada", adjustment=1, expected_revision=0)
        )
        self.adjust(uow, "customer_not_found", adjustment(shop_id, "nobody", adjustment=1))
        self.adjust(uow, "unknown_shop", adjustment("no-such-shop", "ada", adjustment=1))
        self.adjust(uow, "invalid_command", adjustment(shop_id, "ada", adjustment="5"))
        self.adjust(uow, "invalid, no keys", ["not", "an", "object"])
        self.reversals(uow, shop_id)
        create_customer(uow, shop_id, "bo", excluded=True)
        self.adjust(uow, "customer_excluded", adjustment(shop_id, "bo", adjustment=1))
        for index, result in enumerate(
            command_engine.adjust_points_bulk(
                uow,
                [
                    adjustment(shop_id, "ada", adjustment=3),
                    {"upsert_customer": self.upsert(shop_id, "cy", email="cy@example.com")},
                    adjustment(shop_id, "ada", adjustment=0),
                ],
                max_commands=10,
            )
        ):
            self.all[f"bulk item {index}"] = result

    def reversals(self, uow: UnitOfWork, shop_id: str) -> None:
        granted = self.adjust(uow, "to reverse", adjustment(shop_id, "ada", adjustment=40))
        reverses = granted["transaction_id"]
        self.reverse(uow, "reversal, partial", reversal(shop_id, "ada", reverses, points=10))
        whole = self.reverse(uow, "reversal, the rest", reversal(shop_id, "ada", reverses))
        self.reverse(uow, "nothing_to_reverse", reversal(shop_id, "ada", reverses))
        self.reverse(
            uow, "not_reversible", reversal(shop_id, "ada", whole["transaction_id"], points=1)
        )
        self.reverse(uow, "transaction_not_found", reversal(shop_id, "ada", str(uuid.uuid4())))
        small = self.adjust(uow, "small, to reverse", adjustment(shop_id, "ada", adjustment=5))
        self.reverse(
            uow,
            "reversal_exceeds_remaining",
            reversal(shop_id, "ada", small["transaction_id"], points=6),
        )

    def reverse(self, uow: UnitOfWork, kind: str, payload: Any) -> dict[str, Any]:
        self.all[kind] = command_engine.reverse_adjustment(uow, payload)
        return self.all[kind]

    def adjust(self, uow: UnitOfWork, kind: str, payload: Any) -> dict[str, Any]:
        self.all[kind] = command_engine.adjust_points(uow, payload)
        return self.all[kind]

    @staticmethod
    def upsert(shop_id: str, customer_id: str, **fields: Any) -> dict[str, Any]:
        command_id = f"upsert-{uuid.uuid4()}"
        return {"command_id": command_id, "shop_id": shop_id, "customer_id": customer_id, **fields}


@pytest.fixture
def results(uow: UnitOfWork, connection: Connection, shop_id: str) -> dict[str, dict[str, Any]]:
    return Results(uow, connection, shop_id).all


class TestResults:
    def test_the_results_cover_every_kind(self, results: dict[str, dict[str, Any]]) -> None:
        codes = {r["error"]["code"] for r in results.values() if r["status"] == "rejected"}

        assert codes == {code.value for code in ErrorCode}
        assert results["applied with a tier"]["account"]["tier"] == {
            "name": "Gold",
            "threshold": 100,
        }
        assert results["invalid, no keys"]["command_id"] is None
        assert results["upsert updated"]["created"] is False
        assert [results[f"bulk item {i}"]["status"] for i in range(3)] == [
            "applied",
            "applied",
            "rejected",
        ]

    def test_every_real_result_validates_against_the_committed_schema(
        self, results: dict[str, dict[str, Any]]
    ) -> None:
        check = validator("command_result.json")

        for kind, result in results.items():
            errors = [error.message for error in check.iter_errors(result)]
            assert not errors, (kind, errors, result)

    def test_every_real_result_validates_against_the_result_models(
        self, results: dict[str, dict[str, Any]]
    ) -> None:
        for kind, result in results.items():
            shape = command_result.validate_json(json.dumps(result))

            if result["status"] == "rejected":
                assert type(shape) is CommandRejected, kind
            elif "customer" in result:
                assert type(shape) is CustomerUpserted, kind
            elif result["data"]["type"] == "points_reversal":
                assert type(shape) is ReversalApplied, kind
            else:
                assert type(shape) is AdjustmentApplied, kind

    @pytest.mark.parametrize(
        ("change", "where"),
        [
            (lambda r: r["account"].pop("revision"), "revision"),
            (lambda r: r["account"].update(tier="Gold"), "tier"),
            (lambda r: r.update(extra=1), "extra"),
            (lambda r: r["data"].update(type="points"), "type"),
            (lambda r: r.update(transaction_id="not-a-uuid"), "transaction_id"),
        ],
    )
    def test_a_result_of_another_shape_is_refused(
        self, results: dict[str, dict[str, Any]], change: Any, where: str
    ) -> None:
        result = json.loads(json.dumps(results["applied with a tier"]))
        change(result)

        assert list(validator("command_result.json").iter_errors(result))
        with pytest.raises(ValidationError, match=where):
            command_result.validate_json(json.dumps(result))

    def test_an_error_code_must_carry_its_http_status(
        self, results: dict[str, dict[str, Any]]
    ) -> None:
        rejected = json.loads(json.dumps(results["customer_not_found"]))
        rejected["error"]["http_status"] = 400

        with pytest.raises(ValidationError, match="customer_not_found is HTTP 404"):
            command_result.validate_json(json.dumps(rejected))


BASE = {"command_id": "c-1", "shop_id": "coffee-co", "customer_id": "6789012345"}

ADJUSTMENTS: list[tuple[dict[str, Any], bool]] = [
    ({"adjustment": 500}, True),
    ({"amount": -20, "description": "Wix style"}, True),
    ({"balance": 0, "expected_revision": 3}, True),
    ({"adjustment": 5, "balance": 7, "note": "balance wins"}, True),
    ({"balance": 1200, "lifetime_points": 5000, "update_lifetime_points": False}, True),
    ({"adjustment": -9_999_999, "on_insufficient_points": "reject", "send_email": False}, True),
    ({"adjustment": 1, "source": "support-tool", "actor": "agent-7", "note": None}, True),
    ({}, False),
    ({"note": "no amount"}, False),
    ({"adjustment": None}, False),
    ({"adjustment": 0}, False),
    ({"amount": 0}, False),
    ({"adjustment": 5, "amount": 5}, False),
    ({"adjustment": 5, "note": "a", "description": "b"}, False),
    ({"adjustment": "500"}, False),
    ({"adjustment": 12.5}, False),
    ({"adjustment": True}, False),
    ({"adjustment": 10_000_000}, False),
    ({"balance": -1}, False),
    ({"balance": 1_000_000_000}, False),
    ({"adjustment": 5, "lifetime_points": -1}, False),
    ({"adjustment": 5, "note": "x" * 501}, False),
    ({"adjustment": 5, "note": ""}, False),
    ({"adjustment": 5, "on_insufficient_points": "clamp"}, False),
    ({"adjustment": 5, "bonus": 1}, False),
    ({"adjustment": 5, "customer_id": ""}, False),
]

UPSERTS: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    ({"email": "ada@example.com", "phone": "+44 20 7946 0958"}, True),
    ({"first_name": "Ada", "last_name": "Lovelace", "excluded": False}, True),
    ({"email": None, "phone": None}, True),
    ({"email": "not an email"}, False),
    ({"phone": "call me"}, False),
    ({"excluded": "yes"}, False),
    ({"nickname": "Bo"}, False),
    ({"first_name": "x" * 101}, False),
]


def model_accepts(model: type[AdjustPoints | UpsertCustomer], command: dict[str, Any]) -> bool:
    try:
        parse_command(model, command)
    except InvalidCommand:
        return False
    return True


@pytest.mark.parametrize(("fields", "valid"), ADJUSTMENTS)
def test_the_adjust_points_schema_agrees_with_the_model(
    fields: dict[str, Any], valid: bool
) -> None:
    command = {**BASE, **fields}

    assert model_accepts(AdjustPoints, command) is valid
    assert validator("adjust_points.json").is_valid(command) is valid


@pytest.mark.parametrize(("fields", "valid"), UPSERTS)
def test_the_upsert_customer_schema_agrees_with_the_model(
    fields: dict[str, Any], valid: bool
) -> None:
    command = {**BASE, **fields}

    assert model_accepts(UpsertCustomer, command) is valid
    assert validator("upsert_customer.json").is_valid(command) is valid


def test_what_the_publisher_sends_validates_against_the_schema() -> None:
    sent = AdjustPoints.model_validate({**BASE, "amount": 5, "description": "x"}).model_dump(
        mode="json", exclude_none=True
    )

    assert validator("adjust_points.json").is_valid(sent)
    assert sent["adjustment"] == 5
