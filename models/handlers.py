"""What each command does, start to finish: validate once, then one transaction through the unit
of work. Infrastructure errors propagate (the task retries them); everything about the command
itself ends as a recorded result."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from models import bulk, results
from models.adjustments import plan_adjustment
from models.commands import (
    ADJUST_POINTS,
    UPSERT_CUSTOMER,
    AdjustPoints,
    CommandT,
    InvalidCommand,
    UpsertCustomer,
    parse_command,
    salvage_key,
)
from models.errors import Rejection, customer_not_found, unknown_shop
from models.side_effects import owed_side_effects
from models.unit_of_work import UnitOfWork

ResultT = TypeVar("ResultT")

# A command and its duplicate can race past the idempotency read; the loser's insert of the key
# fails and it starts over, then finds the stored result. More than a few losses is a bug.
_RACE_ATTEMPTS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def adjust_points(uow: UnitOfWork, payload: Any) -> dict[str, Any]:
    return _handle(uow, AdjustPoints, ADJUST_POINTS, payload, _adjust)


def upsert_customer(uow: UnitOfWork, payload: Any) -> dict[str, Any]:
    return _handle(uow, UpsertCustomer, UPSERT_CUSTOMER, payload, _upsert)


def _handle(
    uow: UnitOfWork,
    model: type[CommandT],
    command_type: str,
    payload: Any,
    apply: Callable[[UnitOfWork, CommandT, str], dict[str, Any]],
) -> dict[str, Any]:
    try:
        command = parse_command(model, payload)
    except InvalidCommand as invalid:
        return reject_invalid(uow, command_type, payload, invalid)
    payload_hash = command.payload_hash()
    return _retry_races(lambda: apply(uow, command, payload_hash))


def adjust_points_bulk(uow: UnitOfWork, payload: Any, *, max_commands: int) -> list[dict[str, Any]]:
    """A chunk of commands in one transaction, with one result per command, in order."""
    if not isinstance(payload, list) or not 1 <= len(payload) <= max_commands:
        invalid = InvalidCommand(
            [{"field": "commands", "reason": f"must be a list of 1 to {max_commands} commands"}]
        )
        return [reject_invalid(uow, bulk.BULK, payload, invalid)]
    items = [bulk.parse_item(item) for item in payload]
    customers, commands = bulk.keys_to_read(items)

    def apply() -> list[dict[str, Any]]:
        with uow:
            state = uow.bulk.read(customers, commands, lock=True)
            plan = bulk.plan_chunk(items, state, utc_now())
            uow.owe(uow.bulk.write(plan))
            uow.commit()
            return plan.results

    return _retry_races(apply)


def reject_invalid(
    uow: UnitOfWork, command_type: str, payload: Any, invalid: InvalidCommand
) -> dict[str, Any]:
    """Invalid input is recorded but does not claim its idempotency key: the sender can fix the
    command and send it again under the same id."""
    shop_id, command_id = salvage_key(payload)
    result = results.rejected(shop_id, command_id, invalid.rejection())
    with uow:
        uow.store.record_rejected_message(
            command_type=command_type,
            shop_id=shop_id,
            command_id=command_id,
            payload=payload,
            result=result,
            now=utc_now(),
        )
        uow.commit()
    return result


def _retry_races(attempt: Callable[[], ResultT]) -> ResultT:
    for _ in range(_RACE_ATTEMPTS - 1):
        try:
            return attempt()
        except IntegrityError:
            continue
    return attempt()


def _adjust(uow: UnitOfWork, command: AdjustPoints, payload_hash: str) -> dict[str, Any]:
    with uow:
        account = uow.store.lock_account(command.shop_id, command.customer_id, command.command_id)
        if account is None:
            return _settle_without_account(uow, command, ADJUST_POINTS, payload_hash)
        if account.stored_result is not None:
            return _replay(
                uow,
                command,
                ADJUST_POINTS,
                payload_hash,
                account.stored_hash,
                account.stored_result,
            )

        outcome = plan_adjustment(account.points, command, excluded=account.excluded)
        now = utc_now()
        if isinstance(outcome, Rejection):
            result = results.rejected(command.shop_id, command.command_id, outcome)
            _record(uow, command, ADJUST_POINTS, payload_hash, result, now)
            uow.commit()
            return result

        transaction_id = uuid.uuid4()
        result = results.applied(
            shop_id=command.shop_id,
            command_id=command.command_id,
            customer_id=command.customer_id,
            transaction_id=transaction_id,
            adjustment=outcome,
            note=command.note,
            account=results.account_view(command.customer_id, outcome.after, account.tier, now),
        )
        owed = uow.store.record_adjustment(
            account_id=account.id,
            command=command,
            adjustment=outcome,
            transaction_id=transaction_id,
            now=now,
            side_effects=owed_side_effects(
                outcome, command, account.email, shop_has_tiers=account.shop_has_tiers
            ),
            payload_hash=payload_hash,
            result=result,
        )
        uow.owe(owed)
        uow.commit()
        return result


def _upsert(uow: UnitOfWork, command: UpsertCustomer, payload_hash: str) -> dict[str, Any]:
    with uow:
        account = uow.store.lock_account(command.shop_id, command.customer_id, command.command_id)
        if account is not None and account.stored_result is not None:
            return _replay(
                uow,
                command,
                UPSERT_CUSTOMER,
                payload_hash,
                account.stored_hash,
                account.stored_result,
            )
        if account is None:
            stored = uow.store.stored_result(command.shop_id, command.command_id)
            if stored is not None:
                return _replay(uow, command, UPSERT_CUSTOMER, payload_hash, *stored)
            if not uow.store.shop_exists(command.shop_id):
                return _reject(
                    uow, command, UPSERT_CUSTOMER, payload_hash, unknown_shop(command.shop_id)
                )

        now = utc_now()
        if account is None:
            account_id = uow.store.create_account(command, now)
        else:
            account_id = account.id
            uow.store.update_customer(account_id, command, now)
        customer = uow.store.customer_record(account_id)
        result = results.customer_upserted(command, customer, created=account is None)
        _record(uow, command, UPSERT_CUSTOMER, payload_hash, result, now)
        uow.commit()
        return result


def _settle_without_account(
    uow: UnitOfWork, command: AdjustPoints, command_type: str, payload_hash: str
) -> dict[str, Any]:
    stored = uow.store.stored_result(command.shop_id, command.command_id)
    if stored is not None:
        return _replay(uow, command, command_type, payload_hash, *stored)
    if not uow.store.shop_exists(command.shop_id):
        rejection = unknown_shop(command.shop_id)
    else:
        rejection = customer_not_found(command.shop_id, command.customer_id)
    return _reject(uow, command, command_type, payload_hash, rejection)


def _reject(
    uow: UnitOfWork,
    command: AdjustPoints | UpsertCustomer,
    command_type: str,
    payload_hash: str,
    rejection: Rejection,
) -> dict[str, Any]:
    result = results.rejected(command.shop_id, command.command_id, rejection)
    _record(uow, command, command_type, payload_hash, result, utc_now())
    uow.commit()
    return result


def _replay(
    uow: UnitOfWork,
    command: AdjustPoints | UpsertCustomer,
    command_type: str,
    payload_hash: str,
    stored_hash: str | None,
    stored_result: dict[str, Any],
) -> dict[str, Any]:
    result, conflict = results.replayed(
        command.shop_id, command.command_id, stored_result, same_payload=stored_hash == payload_hash
    )
    if not conflict:
        return result
    uow.store.record_rejected_message(
        command_type=command_type,
        shop_id=command.shop_id,
        command_id=command.command_id,
        payload=command.model_dump(mode="json"),
        result=result,
        now=utc_now(),
    )
    uow.commit()
    return result


def _record(
    uow: UnitOfWork,
    command: AdjustPoints | UpsertCustomer,
    command_type: str,
    payload_hash: str,
    result: dict[str, Any],
    now: datetime,
) -> None:
    uow.store.record_result(
        shop_id=command.shop_id,
        command_id=command.command_id,
        command_type=command_type,
        payload_hash=payload_hash,
        result=result,
        now=now,
    )
