"""The worker under test and the polls that tell when it has drained a phase: a count that stops
moving fails the phase instead of waiting forever."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from bench.throughput.config import (
    POLL_INTERVAL,
    QUEUE,
    RESULTS_DIR,
    ROOT,
    STALL_SECONDS,
    Config,
    say,
)
from bench.throughput.cpu import tree_cpu
from bench.throughput.database import BenchDatabase
from workers.process import WorkerProcess


class Worker(WorkerProcess):
    """The worker under test, with its log in bench/results/."""

    def __init__(self, config: Config, name: str, imports: Sequence[str] = ()) -> None:
        super().__init__(
            f"bench-{name}",
            RESULTS_DIR / f"worker-{name}.log",
            queues=QUEUE,
            concurrency=config.concurrency,
            imports=imports,
            cwd=ROOT,
        )

    def cpu(self) -> float:
        return tree_cpu(self.pid) if self.process is not None else math.nan


def wait_for(
    done: Callable[[], int], target: int, worker: Worker, label: str, timeout: float
) -> float:
    """Poll until ``done() >= target``; returns the perf_counter() of the poll that saw it."""
    deadline = time.perf_counter() + timeout
    next_report = time.perf_counter() + 10
    last_count, last_change = -1, time.perf_counter()
    while True:
        count = done()
        now = time.perf_counter()
        if count >= target:
            return now
        worker.check_alive()
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change > STALL_SECONDS:
            raise RuntimeError(
                f"{label}: stuck at {count}/{target} for {STALL_SECONDS:.0f} s: did another "
                "process purge or consume the queue (another run on the same broker)?"
            )
        if now > deadline:
            raise TimeoutError(f"{label}: {count}/{target} done after {timeout:.0f}s")
        if now >= next_report:
            say(f"    {label}: {count}/{target}")
            next_report = now + 10
        time.sleep(POLL_INTERVAL)


def wait_for_commits(
    db: BenchDatabase,
    base: int,
    prefix: str,
    count: int,
    worker: Worker,
    label: str,
    timeout: float,
) -> float:
    """Poll the ledger's newest id (every bench command is applied: one ledger row each), then
    confirm with the exact count once: ids are handed out before their transaction commits."""
    finished = wait_for(lambda: db.ledger_high_water() - base, count, worker, label, timeout)
    while db.committed(prefix) < count:
        time.sleep(POLL_INTERVAL / 4)
        finished = time.perf_counter()
    return finished


def drain_timeout(count: int) -> float:
    """Generous: a drain slower than 20 commands a second is broken, not slow."""
    return max(300.0, count / 20)
