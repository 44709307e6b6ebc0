"""Phase (d): publish-to-commit latency at a steady rate (half of (a)'s), from a warmed worker
that was idle and ready before the first command left."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.throughput.broker import forget_results, publish, reset_queue
from bench.throughput.config import ADJUST_TASK, LATENCY, QUEUE, WARMUP, Config, say
from bench.throughput.database import BenchDatabase
from bench.throughput.measures import Latency, summarize_latency
from bench.throughput.worker import Worker, wait_for

if TYPE_CHECKING:
    from celery import Celery


def run_latency(
    app: Celery,
    config: Config,
    db: BenchDatabase,
    warmup: Sequence[dict[str, Any]],
    commands: Sequence[dict[str, Any]],
    rate: float,
) -> Latency:
    """A fresh worker first applies ``warmup`` (each child opens its connection and prepares its
    statements: ~100 ms that would otherwise be the p99), then ``commands`` arrive at ``rate``."""
    say(
        f"(d) latency: {len(commands)} commands at {rate:.0f}/s for {len(commands) / rate:.0f} s, "
        f"after {len(warmup)} warm-up commands"
    )
    reset_queue(app)
    published: dict[str, float] = {}
    with Worker(config, "latency") as worker:
        worker.start().wait_ready(app)
        task_ids = publish(app, ADJUST_TASK, warmup)
        wait_for(lambda: db.committed(WARMUP), len(warmup), worker, "(d) warm-up", 120)
        publishing = publish_steadily(app, commands, rate, published, task_ids)
        wait_for(lambda: db.committed(LATENCY), len(commands), worker, "(d) committed", 300)
    forget_results(app, task_ids)
    return summarize_latency(published, db.commit_times(LATENCY), rate, publishing, len(warmup))


def publish_steadily(
    app: Celery,
    commands: Sequence[dict[str, Any]],
    rate: float,
    published: dict[str, float],
    task_ids: list[str],
) -> float:
    """Send ``commands`` on a fixed schedule of ``rate`` a second, noting each one's publish
    time (epoch seconds, by command id) and task id; returns how long the publishing took."""
    with app.producer_or_acquire() as producer:
        begin = time.perf_counter()
        for number, command in enumerate(commands):
            delay = begin + number / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            published[command["command_id"]] = time.time()
            result = app.send_task(ADJUST_TASK, args=[command], queue=QUEUE, producer=producer)
            task_ids.append(result.id)
        return time.perf_counter() - begin
