"""How a message becomes an item the planner decides: a command of a known type, or the reason it
is not one. A bulk chunk's items may name their type; a live task's type is its task's."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from models.domain.commands import (
    ADJUST_POINTS,
    COMMAND_MODELS,
    Command,
    InvalidCommand,
    ReverseAdjustment,
    parse_command,
)

BULK = "adjust_points_bulk"
"""The command type a refused bulk chunk is recorded under."""

Key = tuple[str, str]
"""(shop_id, customer_id) or (shop_id, command_id)."""


@dataclass(frozen=True, slots=True)
class ParsedItem:
    command_type: str
    payload: Any
    command: Command | None
    invalid: InvalidCommand | None


def parse_item(item: Any) -> ParsedItem:
    """A bulk chunk's item is an adjust-points command, or a command wrapped in a one-key object
    naming its type: ``{"upsert_customer": {...}}`` (or ``{"adjust_points": {...}}``)."""
    command_type, payload = ADJUST_POINTS, item
    if isinstance(item, dict) and len(item) == 1:
        ((name, inner),) = item.items()
        if name in COMMAND_MODELS:
            command_type, payload = name, inner
    return parse_command_of(command_type, payload)


def parse_command_of(command_type: str, payload: Any) -> ParsedItem:
    """``payload`` read as a command of ``command_type`` (a name of ``COMMAND_MODELS``)."""
    try:
        command = parse_command(COMMAND_MODELS[command_type], payload)
    except InvalidCommand as invalid:
        return ParsedItem(command_type, payload, None, invalid)
    return ParsedItem(command_type, payload, command, None)


@dataclass(frozen=True, slots=True)
class BatchKeys:
    """What a batch reads before it is planned."""

    customers: set[Key] = field(default_factory=set)
    """(shop, customer): the accounts to lock."""
    commands: set[Key] = field(default_factory=set)
    """(shop, command): the stored results to look up."""
    transactions: set[uuid.UUID] = field(default_factory=set)
    """The ledger entries the batch's reversals name."""


def keys_to_read(items: Iterable[ParsedItem]) -> BatchKeys:
    keys = BatchKeys()
    for item in items:
        command = item.command
        if command is not None:
            keys.customers.add((command.shop_id, command.customer_id))
            keys.commands.add((command.shop_id, command.command_id))
            if isinstance(command, ReverseAdjustment):
                keys.transactions.add(uuid.UUID(command.transaction_id))
    return keys
