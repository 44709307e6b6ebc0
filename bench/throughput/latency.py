"""Phase (d): publish-to-commit latency at a steady rate (half of (a)'s), from a warmed worker
that was idle and ready before the first command left."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from celery import Celery

import celeryconfig
from bench.throughput.broker import forget_results, publish, reset_queue
from bench.throughput.config import ADJUST_TASK, LATENCY, LONE, QUEUE, WARMUP, Config, say
from bench.throughput.database import BenchDatabase
from bench.throughput.measures import Latency, LoneLatency, summarize_latency
from bench.throughput.worker import Worker, wait_for
from workers.outbound.providers import PROVIDERS
from workers.settings import settings


def run_latency(
    app: Celery,
    config: Config,
    db: BenchDatabase,
    warmup: Sequence[dict[str, Any]],
    commands: Sequence[dict[str, Any]],
    rate: float,
    lone: Sequence[dict[str, Any]],
) -> tuple[Latency, LoneLatency]:
    """A fresh worker first applies ``warmup`` (each child opens its connection and prepares its
    statements: ~100 ms that would otherwise be the p99), then ``commands`` arrive at ``rate``;
    once they are applied, ``lone`` go one at a time."""
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
        say(f"(d) lone commands: {len(lone)}, each sent once the one before has its result")
        alone = publish_alone(db, lone, task_ids)
    forget_results(app, task_ids)
    steady = summarize_latency(published, db.commit_times(LATENCY), rate, publishing, len(warmup))
    return steady, alone


def publish_alone(
    db: BenchDatabase, commands: Sequence[dict[str, Any]], task_ids: list[str]
) -> LoneLatency:
    """A publisher of its own: the bench's app is subscribed to the result of every command (d)
    sent, and the first wait would read through all of those results first."""
    alone = Celery("bench-lone", set_as_current=False)
    alone.conf.update(celeryconfig.configuration(settings(), PROVIDERS))
    published: dict[str, float] = {}
    to_result = []
    for command in commands:
        time.sleep(0.05)  # the worker's pool process is back and idle
        published[command["command_id"]] = sent = time.time()
        result = alone.send_task(ADJUST_TASK, args=[command], queue=QUEUE)
        result.get(timeout=30)
        to_result.append(time.time() - sent)
        task_ids.append(result.id)
    alone.close()
    committed = db.commit_times(LONE)
    return LoneLatency.of([committed[key] - sent for key, sent in published.items()], to_result)


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
