"""What the scenario publishes, decided up front from a seed, and the database it starts from.

Every customer opens with a large balance (its own ledger entry, no email), so the adjustments,
half increases (each owes an email) and half smaller decreases, never reach the zero floor: each
balance must end at exactly the opening balance plus the sum of that customer's distinct
commands. Some commands are published twice under the same ``command_id`` and payload, half right
after the first copy (the two race) and half a little later (the second finds the stored result).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from models.services import command_engine
from tests.support.factories import create_customer, create_shop
from workers.db import Database

SHOP_ID = "chaos-shop"
OPENING_BALANCE = 1_000_000
INCREASE_SHARE = 0.5
LARGEST_INCREASE = 500
LARGEST_DECREASE = 300


@dataclass(frozen=True)
class PlannedCommand:
    command_id: str
    customer_id: str
    adjustment: int

    def payload(self) -> dict[str, object]:
        return {
            "command_id": self.command_id,
            "shop_id": SHOP_ID,
            "customer_id": self.customer_id,
            "adjustment": self.adjustment,
            "note": "chaos suite",
        }


@dataclass(frozen=True)
class Workload:
    customers: tuple[str, ...]
    commands: tuple[PlannedCommand, ...]
    sends: tuple[int, ...]
    """Indexes into ``commands`` in publishing order; a command published twice is there twice."""

    @property
    def republished(self) -> int:
        return len(self.sends) - len(self.commands)

    def expected_balances(self, attempted: set[str]) -> dict[str, int]:
        """Opening balance plus every attempted command's adjustment, per customer."""
        balances = dict.fromkeys(self.customers, OPENING_BALANCE)
        for command in self.commands:
            if command.command_id in attempted:
                balances[command.customer_id] += command.adjustment
        return balances


def customer_email(customer_id: str) -> str:
    return f"{customer_id}@chaos.example"


def plan_workload(
    *, commands: int, duplicates: int, customers: int, duplicate_spread: int, seed: int
) -> Workload:
    """``duplicate_spread``: how many messages later, at most, a late second copy goes out."""
    rng = random.Random(seed)
    customer_ids = tuple(f"c{n:05d}" for n in range(customers))
    planned = tuple(
        PlannedCommand(f"cmd-{n:06d}", rng.choice(customer_ids), _adjustment(rng))
        for n in range(commands)
    )
    order = [(float(n), n) for n in range(commands)]
    for position, index in enumerate(sorted(rng.sample(range(commands), duplicates))):
        delay = 0 if position % 2 == 0 else rng.randint(1, duplicate_spread)
        order.append((index + delay + 0.5, index))
    return Workload(customer_ids, planned, tuple(index for _, index in sorted(order)))


def _adjustment(rng: random.Random) -> int:
    if rng.random() < INCREASE_SHARE:
        return rng.randint(1, LARGEST_INCREASE)
    return -rng.randint(1, LARGEST_DECREASE)


def prepare_database(database_url: str, workload: Workload) -> None:
    """Schema by the Alembic migration, then the shop and its customers (each with an email and
    the opening balance) through the project's own handlers, before any worker runs."""
    database = Database(database_url)
    try:
        database.upgrade()
        create_shop(database.unit_of_work(), SHOP_ID)
        for customer_id in workload.customers:
            create_customer(
                database.unit_of_work(),
                SHOP_ID,
                customer_id,
                email=customer_email(customer_id),
                first_name="Chaos",
            )
            opened = command_engine.adjust_points(
                database.unit_of_work(),
                {
                    "command_id": f"open-{customer_id}",
                    "shop_id": SHOP_ID,
                    "customer_id": customer_id,
                    "balance": OPENING_BALANCE,
                    "send_email": False,
                    "note": "opening balance",
                },
            )
            assert opened["status"] == "applied", opened
    finally:
        database.engine.dispose()
