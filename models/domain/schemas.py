"""The JSON Schemas of ``schemas/``, for publishers written in any language: the two commands a
publisher sends, and the result every command returns. Built from the same models the worker
uses (``models.domain.commands``, ``models.domain.results``); ``scripts/generate_schemas.py``
writes them, and a test checks the committed files match."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import AliasChoices

from models.domain.commands import Command
from models.domain.results import command_result

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def command_schema(model: type[Command]) -> dict[str, Any]:
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


def _with_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}
