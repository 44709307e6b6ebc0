"""The JSON Schema files under ``schemas/``, generated from the models, for publishers written in
any language: the two commands a publisher sends, and the result every command returns.

Results are built as plain dicts (``models.domain.results``); the models here describe them, and the
tests check that real results validate against them. Regenerate the files after changing a
command or a result: ``python -m models.domain.schemas``.
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, TypeAdapter, model_validator

from models.domain.commands import AdjustPoints, UpsertCustomer
from models.domain.errors import ErrorCode

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "python -m models.domain.schemas"


class _Shape(BaseModel):
    """Results are JSON: every key is always present (null when empty), no other key is."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class Tier(_Shape):
    name: str
    threshold: int
    """Lifetime points from which the tier applies."""


class PointsBreakdown(_Shape):
    balance: int
    earned: int
    redeemed: int
    adjusted: int
    """Net of every adjustment."""


class Account(_Shape):
    """The account after the command (Wix's shape)."""

    customer_id: str
    points: PointsBreakdown
    lifetime_points: int
    tier: Tier | None
    """The tier held when the command committed (a recalculation follows)."""
    revision: int
    """Counts points changes; ``expected_revision`` is compared with it."""
    last_activity_at: datetime | None


class AdjustmentAttributes(_Shape):
    customer_id: str
    adjustment: int
    """The delta asked for (for a ``balance`` command: the new balance minus the old)."""
    applied_adjustment: int
    """What really moved, after any floor at zero."""
    points_before: int
    points_after: int
    current_points: int
    note: str | None


class AdjustmentData(_Shape):
    """Mage's shape."""

    type: Literal["points_adjustment"]
    id: uuid.UUID
    """The transaction id."""
    attributes: AdjustmentAttributes


class AdjustmentApplied(_Shape):
    """An applied ``loyalty.adjust_points`` command."""

    status: Literal["applied"]
    command_id: str
    shop_id: str
    transaction_id: uuid.UUID
    data: AdjustmentData
    account: Account


class Customer(_Shape):
    """The customer as stored after the upsert."""

    customer_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    excluded: bool


class CustomerUpserted(_Shape):
    """An applied ``loyalty.upsert_customer`` command."""

    status: Literal["applied"]
    command_id: str
    shop_id: str
    created: bool
    """False when the customer existed and was updated."""
    customer: Customer


class Error(_Shape):
    code: ErrorCode
    http_status: int
    """The HTTP status the code stands for (400, 403, 404, 409 or 422)."""
    message: str
    details: dict[str, Any]
    """For ``invalid_command``: ``errors``, a list of ``{field, reason}``."""

    @model_validator(mode="after")
    def _status_of_the_code(self) -> Error:
        if self.http_status != self.code.http_status:
            raise ValueError(f"{self.code} is HTTP {self.code.http_status}, not {self.http_status}")
        return self


class CommandRejected(_Shape):
    """A refused command, final: it is never retried. ``shop_id`` and ``command_id`` are null
    when an invalid message had no usable ones."""

    status: Literal["rejected"]
    command_id: str | None
    shop_id: str | None
    error: Error


CommandResult = AdjustmentApplied | CustomerUpserted | CommandRejected
command_result: TypeAdapter[CommandResult] = TypeAdapter(CommandResult)
"""Validates a result (``command_result.validate_json``)."""


def command_schema(model: type[AdjustPoints | UpsertCustomer]) -> dict[str, Any]:
    """The model's own schema, plus its aliases (``amount``, ``description``), which the model
    accepts in place of the field but never together with it."""
    schema = _with_dialect(model.model_json_schema())
    properties = schema["properties"]
    for field in model.model_fields.values():
        if not isinstance(field.validation_alias, AliasChoices):
            continue
        primary, *aliases = [
            name for name in field.validation_alias.choices if isinstance(name, str)
        ]
        if primary in schema.get("required", ()):
            raise NotImplementedError(f"a required field with aliases: {primary}")
        for alias in aliases:
            properties[alias] = {
                **copy.deepcopy(properties[primary]),
                "title": alias.replace("_", " ").title(),
                "description": f"Alias of ``{primary}``: give one of them, not both.",
            }
            schema.setdefault("allOf", []).append({"not": {"required": [primary, alias]}})
    return schema


def result_schema() -> dict[str, Any]:
    schema = command_result.json_schema()
    schema["title"] = "CommandResult"
    schema["description"] = (
        "What every command returns and the database keeps: an applied adjustment, an applied "
        "customer upsert, or a rejection. loyalty.adjust_points_bulk returns a list of them."
    )
    return _with_dialect(schema)


def generated() -> dict[str, str]:
    """File name to content, exactly as committed under ``schemas/``."""
    schemas = {
        "adjust_points.json": command_schema(AdjustPoints),
        "upsert_customer.json": command_schema(UpsertCustomer),
        "command_result.json": result_schema(),
    }
    return {name: json.dumps(schema, indent=2) + "\n" for name, schema in schemas.items()}


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def _with_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(f"wrote {path}")
