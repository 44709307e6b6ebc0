"""Phases (a) and (b): the same pre-queued messages drained by a real worker, once by the real
task (a) and once by the no-op task (b), so their rates differ only by what the task does."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis

from bench import COMPLETIONS_KEY, NOOP_TASK
from bench.throughput.broker import forget_results, prefill, reset_queue
from bench.throughput.config import ADJUST_TASK, END_TO_END, Config, say
from bench.throughput.cpu import host_cpu
from bench.throughput.database import BenchDatabase
from bench.throughput.measures import Throughput
from bench.throughput.worker import Worker, drain_timeout, wait_for, wait_for_commits

if TYPE_CHECKING:
    from celery import Celery


def run_end_to_end(
    app: Celery,
    config: Config,
    db: BenchDatabase,
    commands: Sequence[dict[str, Any]],
    prefix: str = END_TO_END,
) -> Throughput:
    """(a): ``loyalty.adjust_points`` through broker, worker, engine and result backend."""
    say(f"(a) end to end: {len(commands)} x {ADJUST_TASK}")
    reset_queue(app)
    task_ids = prefill(app, ADJUST_TASK, commands)
    base = db.ledger_high_water()
    with Worker(config, "adjust") as worker:
        drained = _drain(
            app,
            worker,
            lambda: db.committed(prefix),
            "committed",
            lambda: wait_for_commits(
                db,
                base,
                prefix,
                len(commands),
                worker,
                "(a) committed",
                drain_timeout(len(commands)),
            ),
        )
    forget_results(app, task_ids)
    times = db.commit_times(prefix).values()
    return drained.throughput(
        "(a) adjust_points, end to end", len(commands), times, config.concurrency
    )


def run_noop(app: Celery, config: Config, commands: Sequence[dict[str, Any]]) -> Throughput:
    """(b): the same messages to the no-op task, which counts itself in a Redis list."""
    say(f"(b) framework ceiling: {len(commands)} x {NOOP_TASK}")
    completions = redis.Redis.from_url(config.completions_url)
    completions.delete(COMPLETIONS_KEY)
    reset_queue(app)
    task_ids = prefill(app, NOOP_TASK, commands)

    def done() -> int:
        return cast(int, completions.llen(COMPLETIONS_KEY))

    try:
        with Worker(config, "noop", imports=["bench.noop"]) as worker:
            drained = _drain(
                app,
                worker,
                done,
                "done",
                lambda: wait_for(
                    done, len(commands), worker, "(b) done", drain_timeout(len(commands))
                ),
            )
        times = [
            float(value) for value in cast(list[bytes], completions.lrange(COMPLETIONS_KEY, 0, -1))
        ]
    finally:
        completions.delete(COMPLETIONS_KEY)
        completions.close()
    forget_results(app, task_ids)
    return drained.throughput(
        "(b) no-op task: Celery ceiling", len(commands), times, config.concurrency
    )


@dataclass(frozen=True)
class _Drained:
    """One drain by the worker under test: the wall window from its first ping reply to the poll
    that saw all done, what was already done by then, and the CPU spent in the window."""

    wall_seconds: float
    done_at_start: int
    own_cpu_seconds: float
    host_cpu_seconds: float

    def throughput(
        self, label: str, count: int, times: Collection[float], processes: int
    ) -> Throughput:
        """``times`` are the completions' epoch seconds."""
        return Throughput(
            label,
            count,
            min(times),
            max(times),
            self.wall_seconds,
            self.done_at_start,
            processes,
            self.own_cpu_seconds,
            self.host_cpu_seconds,
        )


def _drain(
    app: Celery,
    worker: Worker,
    done: Callable[[], int],
    done_word: str,
    wait_until_drained: Callable[[], float],
) -> _Drained:
    """Start the worker on the pre-queued messages and time it until they are drained."""
    ready_after = worker.start().wait_ready(app)
    clock, host, own = time.perf_counter(), host_cpu(), worker.cpu()
    done_at_start = done()
    say(f"    worker ready after {ready_after:.1f} s, {done_at_start} already {done_word}")
    finished = wait_until_drained()
    host, own = host_cpu() - host, worker.cpu() - own
    return _Drained(finished - clock, done_at_start, own, host)
