"""The command engine: every command, whether it came alone, in a worker's micro-batch or in a
migration's chunk, is applied as part of a batch: one locking read, one plan
(``models.domain.planner``), one set-based write, one commit. Infrastructure errors propagate (the
caller retries the batch); everything about a command itself ends as its recorded result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from models.domain import parsing, planner, results
from models.domain.clock import utc_now
from models.domain.command_log import rejected_message_row
from models.domain.commands import (
    ADJUST_POINTS,
    REVERSE_ADJUSTMENT,
    UPSERT_CUSTOMER,
    InvalidCommand,
    salvage_key,
)
from models.domain.parsing import ParsedItem
from models.persistence.unit_of_work import UnitOfWork

ResultT = TypeVar("ResultT")

# Two batches can race past the idempotency read with the same command, or create the same
# customer; the loser's insert fails and it starts over, then finds what the winner wrote. More
# than a few losses is a bug.
_RACE_ATTEMPTS = 3


def apply_batch(uow: UnitOfWork, items: Sequence[ParsedItem]) -> list[dict[str, Any]]:
    """The batch's commands in one transaction, in order; one result per command."""
    keys = parsing.keys_to_read(items)

    def attempt() -> list[dict[str, Any]]:
        with uow:
            state = uow.batches.read(keys, lock=True)
            plan = planner.plan_batch(list(items), state, utc_now())
            uow.owe(uow.batches.write(plan))
            uow.commit()
            return plan.results

    return _retry_races(attempt)


def apply_one(uow: UnitOfWork, command_type: str, payload: Any) -> dict[str, Any]:
    """One command: a batch of one."""
    return apply_batch(uow, [parsing.parse_command_of(command_type, payload)])[0]


def adjust_points(uow: UnitOfWork, payload: Any) -> dict[str, Any]:
    return apply_one(uow, ADJUST_POINTS, payload)


def upsert_customer(uow: UnitOfWork, payload: Any) -> dict[str, Any]:
    return apply_one(uow, UPSERT_CUSTOMER, payload)


def reverse_adjustment(uow: UnitOfWork, payload: Any) -> dict[str, Any]:
    return apply_one(uow, REVERSE_ADJUSTMENT, payload)


def adjust_points_bulk(uow: UnitOfWork, payload: Any, *, max_commands: int) -> list[dict[str, Any]]:
    """A bulk task's chunk, with one result per command, in order."""
    if not isinstance(payload, list) or not 1 <= len(payload) <= max_commands:
        invalid = InvalidCommand(
            [{"field": "commands", "reason": f"must be a list of 1 to {max_commands} commands"}]
        )
        return [reject_invalid(uow, parsing.BULK, payload, invalid)]
    return apply_batch(uow, [parsing.parse_item(item) for item in payload])


def reject_invalid(
    uow: UnitOfWork, command_type: str, payload: Any, invalid: InvalidCommand
) -> dict[str, Any]:
    """Invalid input is recorded but does not claim its idempotency key: the sender can fix the
    command and send it again under the same id."""
    shop_id, command_id = salvage_key(payload)
    refusal = results.rejected(shop_id, command_id, invalid.rejection())
    return _record_refused(uow, command_type, payload, refusal)


def record_bug(uow: UnitOfWork, item: ParsedItem, bug: Exception) -> dict[str, Any]:
    """A command that raised is kept with the refused messages, under no idempotency key: once
    the bug is fixed, the same command sent again is applied."""
    shop_id, command_id = salvage_key(item.payload)
    failure = results.failed(shop_id, command_id, f"{type(bug).__name__}: {bug}")
    return _record_refused(uow, item.command_type, item.payload, failure)


def _record_refused(
    uow: UnitOfWork,
    command_type: str,
    payload: Any,
    refusal: results.CommandRejected | results.CommandFailed,
) -> dict[str, Any]:
    result = results.as_json(refusal)
    row = rejected_message_row(
        command_type, result["shop_id"], result["command_id"], payload, result, utc_now()
    )
    with uow:
        uow.command_log.record_rejected_message(row)
        uow.commit()
    return result


def _retry_races(attempt: Callable[[], ResultT]) -> ResultT:
    for _ in range(_RACE_ATTEMPTS - 1):
        try:
            return attempt()
        except IntegrityError:
            continue
    return attempt()
