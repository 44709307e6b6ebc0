"""A guided tour: a real worker process applies Mage-style and Wix-style commands, including a
duplicate, a floor at zero and rejections, and the results are printed as the worker returns them.

With no LOYALTY_* variables set this runs on SQLite files under ``.loyalty/`` and needs no server.
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from pathlib import Path
from typing import Any, Protocol

from celery.exceptions import TimeoutError as ResultTimeout

from models.domain.names import ADJUST_POINTS_TASK, UPSERT_CUSTOMER_TASK
from workers.client.publisher import publish
from workers.db import database
from workers.process import WorkerProcess


def run_demo(timeout: float) -> int:
    database.upgrade()
    shop_id = f"demo-{uuid.uuid4().hex[:6]}"
    with database.unit_of_work() as uow:
        uow.shops.create(shop_id, "Demo Coffee Co.")
        uow.commit()
    print(f"Shop {shop_id} created; starting a worker (2 processes) ...\n")

    log_path = Path(os.environ.get("LOYALTY_DATA_DIR", ".loyalty")).resolve() / "demo-worker.log"
    with WorkerProcess("demo", log_path).start():
        return _tour(shop_id, timeout)


class Send(Protocol):
    """Publishes one tour command as it is and prints it with the worker's result."""

    def __call__(
        self, title: str, command: dict[str, Any], upsert: bool = False
    ) -> dict[str, Any]: ...


def _tour(shop_id: str, timeout: float) -> int:
    send = _sender(shop_id, timeout)
    try:
        _create_customers(send)
        _mage_style(send)
        _wix_style(send)
        _floors_and_rejections(send)
    except ResultTimeout:
        print(f"No result within {timeout:g}s: see the worker log in .loyalty/demo-worker.log")
        return 1
    _print_accounts(shop_id)
    print(f"\nInspect one: loyalty account show {shop_id} bob")
    return 0


def _sender(shop_id: str, timeout: float) -> Send:
    def send(title: str, command: dict[str, Any], upsert: bool = False) -> dict[str, Any]:
        command = {"command_id": str(uuid.uuid4()), "shop_id": shop_id, **command}
        # Sent as they are, unvalidated, so the tour shows the worker's own rejections too.
        task_name = UPSERT_CUSTOMER_TASK if upsert else ADJUST_POINTS_TASK
        result: dict[str, Any] = publish(task_name, command).get(timeout=timeout)
        print(f"{title}\n  sent    {_compact(command)}\n  result  {_summary(result)}\n")
        return result

    return send


def _create_customers(send: Send) -> None:
    send(
        "Create customer alice (with email)",
        {"customer_id": "alice", "email": "alice@example.com", "first_name": "Alice"},
        upsert=True,
    )
    send("Create customer bob", {"customer_id": "bob", "first_name": "Bob"}, upsert=True)


def _mage_style(send: Send) -> None:
    """An add with its own command id, then the very same command again: applied once."""
    welcome = {
        "command_id": f"welcome-{uuid.uuid4().hex[:8]}",
        "customer_id": "alice",
        "adjustment": 500,
        "note": "Welcome bonus",
        "source": "demo",
    }
    first = send("Mage-style: add 500 points to alice", welcome)
    print("  full result:\n" + textwrap.indent(json.dumps(first, indent=2), "    ") + "\n")
    again = send("The same command again (a redelivery): applied once, same result", welcome)
    assert again == first, "a duplicate must return the stored result"


def _wix_style(send: Send) -> None:
    send(
        "Wix-style: set bob's balance to 1200",
        {"customer_id": "bob", "balance": 1200, "description": "Imported from the old program"},
    )
    send(
        "Wix-style: amount with the current revision",
        {
            "customer_id": "bob",
            "amount": -200,
            "expected_revision": 1,
            "description": "Redeemed a mug",
        },
    )


def _floors_and_rejections(send: Send) -> None:
    send("Floor: deduct 800 from alice's 500", {"customer_id": "alice", "adjustment": -800})
    send(
        "Reject instead of floor: deduct 5000 from bob",
        {"customer_id": "bob", "adjustment": -5000, "on_insufficient_points": "reject"},
    )
    send("Stale revision", {"customer_id": "bob", "adjustment": 10, "expected_revision": 0})
    send("Unknown customer", {"customer_id": "carol", "adjustment": 10})
    send(
        "Invalid: a string amount and an unknown field",
        {"customer_id": "bob", "adjustment": "500", "points": 5},
    )


def _print_accounts(shop_id: str) -> None:
    with database.unit_of_work() as uow:
        for customer_id in ("alice", "bob"):
            row = uow.accounts.summary(shop_id, customer_id)
            print(
                f"Account {customer_id}: balance {row.balance}, lifetime {row.lifetime}, "
                f"revision {row.revision}"
            )


def _compact(command: dict[str, Any]) -> str:
    shown = {k: v for k, v in command.items() if k not in ("shop_id", "command_id")}
    return json.dumps(shown)


def _summary(result: dict[str, Any]) -> str:
    if result["status"] == "rejected":
        error = result["error"]
        return f"rejected {error['code']} ({error['http_status']}): {error['message']}"
    if "customer" in result:
        return f"applied, customer {'created' if result['created'] else 'updated'}"
    attributes = result["data"]["attributes"]
    account = result["account"]
    return (
        f"applied {attributes['applied_adjustment']:+d} (asked {attributes['adjustment']:+d}): "
        f"{attributes['points_before']} -> {attributes['points_after']}, "
        f"lifetime {account['lifetime_points']}, revision {account['revision']}, "
        f"transaction {result['transaction_id'][:8]}"
    )
