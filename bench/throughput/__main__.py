"""``python -m bench.throughput``: set up the bench database, run (a) and (b) in alternating
rounds, then (c) and (d), check the ledger after each, print the report and save its JSON."""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from bench.throughput.config import (
    DIRECT_SQL,
    END_TO_END,
    LATENCY,
    LONE,
    LONE_COMMANDS,
    ROOT,
    WARMUP,
    Config,
    configure_environment,
    parse_args,
    say,
)
from bench.throughput.database import (
    BenchDatabase,
    exclusive_run,
    recreate_database,
    seed_customers,
)
from bench.throughput.drain import run_end_to_end, run_noop
from bench.throughput.engine import batch_size, run_database_ceiling
from bench.throughput.latency import run_latency
from bench.throughput.measures import Throughput, combine
from bench.throughput.report import RunResults, as_json, header, report, save
from bench.throughput.workload import adjustment_commands, round_sizes

if TYPE_CHECKING:
    from celery import Celery


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 when every ledger check passed."""
    config = parse_args(argv)
    configure_environment(config)
    from workers.app import app  # only now: settings are read at import

    intro = header(config)
    say("\n".join(intro))
    with exclusive_run(config):
        results = run_phases(app, config)
    lines = report(results)
    say("\n".join(lines))
    path = save(config, as_json(config, results, intro + lines))
    say(f"\nsaved {path.relative_to(ROOT)}")
    return 0 if results.ok else 1


def run_phases(app: Celery, config: Config) -> RunResults:
    """The phases in order, on one freshly seeded database; the commands come from one seeded
    generator, so two runs with the same options send the same ones."""
    rng = random.Random(config.seed)
    say(f"setup: re-creating {make_url(config.database_url).database}, seeding customers")
    recreate_database(config)
    customers = seed_customers(config)
    direct_commands = adjustment_commands(DIRECT_SQL, config.commands, customers, rng)

    db = BenchDatabase(config)
    try:
        rounds = run_rounds(app, config, db, customers, rng)
        end_to_end = combine([adjusted for adjusted, _ in rounds])
        noop = combine([noop for _, noop in rounds])
        checks = [("(a)", db.check_ledger(config.commands))]
        database = run_database_ceiling(config, db, direct_commands)
        checks.append(("(c)", db.check_ledger(2 * config.commands)))
        rate = end_to_end.rate / 2
        count = max(2, round(rate * config.latency_seconds))
        warmup = adjustment_commands(WARMUP, 20 * config.concurrency, customers, rng)
        steady = adjustment_commands(LATENCY, count, customers, rng)
        lone = adjustment_commands(LONE, LONE_COMMANDS, customers, rng)
        latency, alone = run_latency(app, config, db, warmup, steady, rate, lone)
        applied = 2 * config.commands + len(warmup) + count + len(lone)
        checks.append(("(d)", db.check_ledger(applied)))
    finally:
        db.close()
    return RunResults([end_to_end, noop, database], rounds, latency, alone, checks, batch_size())


def run_rounds(
    app: Celery,
    config: Config,
    db: BenchDatabase,
    customers: Sequence[str],
    rng: random.Random,
) -> list[tuple[Throughput, Throughput]]:
    """(a) and (b) in rounds ordered a b, b a, ...: a drift of the machine's speed cancels."""
    rounds: list[tuple[Throughput, Throughput]] = []
    for number, size in enumerate(round_sizes(config), start=1):
        say(f"round {number} of {config.rounds}")
        prefix = f"{END_TO_END}r{number}-"
        commands = adjustment_commands(prefix, size, customers, rng)
        if number % 2:
            adjusted = run_end_to_end(app, config, db, commands, prefix)
            noop = run_noop(app, config, commands)
        else:
            noop = run_noop(app, config, commands)
            adjusted = run_end_to_end(app, config, db, commands, prefix)
        rounds.append((adjusted, noop))
    return rounds


if __name__ == "__main__":
    sys.exit(main())
