"""The chaos scenario at full size, on Redis, RabbitMQ or both: prints the figures and the fault
schedule as Markdown (``make chaos`` runs both).

    .venv/bin/python -m bench.chaos --broker both
    .venv/bin/python -m bench.chaos --broker redis --commands 2000 --outage-seconds 10

What the scenario does and what each figure means: ``tests/chaos/`` (``scenario.py``,
``figures.py``). It exits 1 when any figure that must be zero is not.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tests.chaos.report import render
from tests.chaos.scenario import BROKERS, DEFAULT_LOG_ROOT, FULL, SHORT, Report, run_scenario


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    scenario = SHORT if options.short else FULL
    overrides = {
        name: getattr(options, name)
        for name in (
            "commands",
            "duplicates",
            "customers",
            "publish_seconds",
            "outage_seconds",
            "redelivery_bound",
            "seed",
        )
        if getattr(options, name) is not None
    }
    scenario = dataclasses.replace(scenario, **overrides)
    brokers = BROKERS if options.broker == "both" else (options.broker,)
    reports: list[Report] = []
    for broker in brokers:
        print(f"running the chaos scenario on {broker} ...", file=sys.stderr, flush=True)
        reports.append(run_scenario(scenario, broker, options.log_dir))
    print(render(reports))
    return 1 if any(report.problems() for report in reports) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--broker", choices=[*BROKERS, "both"], default="both")
    parser.add_argument("--short", action="store_true", help="the pytest run's scale")
    parser.add_argument("--commands", type=int, help="distinct commands (6000)")
    parser.add_argument("--duplicates", type=int, help="commands published twice (600)")
    parser.add_argument("--customers", type=int, help="customers (300)")
    parser.add_argument("--publish-seconds", type=float, help="publishing window (100)")
    parser.add_argument("--outage-seconds", type=float, help="PostgreSQL outage (30)")
    parser.add_argument(
        "--redelivery-bound", type=float, help="LOYALTY_REDELIVERY_BOUND for the workers (120)"
    )
    parser.add_argument("--seed", type=int, help="seed of the workload and the fault times")
    parser.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_ROOT, help="worker logs")
    return parser


if __name__ == "__main__":
    sys.exit(main())
