"""The commands the phases send: seeded, so two runs with the same options send the same work."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from bench.throughput.config import SHOP_ID, Config


def adjustment_commands(
    prefix: str, count: int, customers: Sequence[str], rng: random.Random
) -> list[dict[str, Any]]:
    """Mostly credits, some debits (a debit past the balance is floored, as by default)."""
    commands = []
    for number in range(count):
        delta = rng.randint(1, 500) if rng.random() < 0.8 else -rng.randint(1, 400)
        commands.append(
            {
                "command_id": f"{prefix}{number:07d}",
                "shop_id": SHOP_ID,
                "customer_id": rng.choice(customers),
                "adjustment": delta,
                "note": "benchmark adjustment",
                "source": "bench",
            }
        )
    return commands


def round_sizes(config: Config) -> list[int]:
    """(a) and (b)'s commands split into ``--rounds`` near-equal rounds."""
    base, extra = divmod(config.commands, config.rounds)
    return [base + (1 if number < extra else 0) for number in range(config.rounds)]
