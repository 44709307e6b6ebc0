"""The run's options and the names every phase shares. Nothing here reads the project's settings:
they are read at import, so ``configure_environment`` must run before anything imports them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

import bench.throughput as package
from bench import COMPLETIONS_URL_ENV
from models.domain.names import ADJUST_POINTS_TASK, ADJUSTMENTS_QUEUE

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "bench" / "results"

QUEUE = ADJUSTMENTS_QUEUE
ADJUST_TASK = ADJUST_POINTS_TASK
SHOP_ID = "bench-shop"

# Command id prefixes, one per phase that writes to the database.
END_TO_END = "e2e-"
DIRECT_SQL = "sql-"
WARMUP = "warm-"
LATENCY = "lat-"
LONE = "lone-"
LONE_COMMANDS = 50

POLL_INTERVAL = 0.2  # seconds between completion polls (a count of the phase's rows: a few ms)
STALL_SECONDS = 60.0  # no completion for this long while some are missing: give up


@dataclass(frozen=True)
class Config:
    broker: str
    result_backend: str
    database_url: str
    commands: int
    customers: int
    concurrency: int
    latency_seconds: float
    seed: int
    rounds: int

    @property
    def completions_url(self) -> str:
        """Where the no-op task counts itself: the result backend's Redis when it is one."""
        if self.result_backend.startswith(("redis://", "rediss://")):
            return self.result_backend
        return "redis://127.0.0.1:6379/12"


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The command line; refuses a database whose name does not say it may be dropped."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.commands < 2 * args.rounds or args.customers < 1 or args.concurrency < 1:
        parser.error("need --commands >= 2 * --rounds, --customers >= 1, --concurrency >= 1")
    if "bench" not in (make_url(args.database_url).database or ""):
        parser.error("--database-url must name a database with 'bench' in it: it is dropped")
    return Config(
        broker=args.broker,
        result_backend=args.result_backend or default_result_backend(args.broker),
        database_url=args.database_url,
        commands=args.commands,
        customers=args.customers,
        concurrency=args.concurrency,
        latency_seconds=args.latency_seconds,
        seed=args.seed,
        rounds=max(1, args.rounds),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput", description=(package.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--result-backend",
        help="default: the broker's Redis, DB 12 (redis://127.0.0.1:6379/12 for other brokers)",
    )
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/loyalty_bench",
        help="dropped and re-created on every run; its name must contain 'bench'",
    )
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="split (a) and (b) into this many alternating rounds (a b, b a, ...) so that both "
        "see the same machine: a shared VM's speed drifts by tens of percent within minutes",
    )
    return parser


def default_result_backend(broker: str) -> str:
    if broker.startswith(("redis://", "rediss://")):
        return urlunsplit(urlsplit(broker)._replace(path="/12"))
    return "redis://127.0.0.1:6379/12"


def configure_environment(config: Config) -> None:
    """workers.settings reads these at import: call before anything imports workers.app. The
    worker subprocesses and phase (c)'s processes inherit the same environment."""
    os.environ.update(
        LOYALTY_DATABASE_URL=config.database_url,
        LOYALTY_BROKER_URL=config.broker,
        LOYALTY_RESULT_BACKEND=config.result_backend,
    )
    os.environ[COMPLETIONS_URL_ENV] = config.completions_url


def say(message: str) -> None:
    """Progress and the report go to stdout as they happen: a run takes minutes."""
    print(message, flush=True)
