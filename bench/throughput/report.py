"""The printed report and its JSON copy in bench/results/: the figures, the ratios between the
phases, how to read them, and the checks that make them trustworthy."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.throughput.config import POLL_INTERVAL, QUEUE, RESULTS_DIR, Config
from bench.throughput.database import LedgerCheck
from bench.throughput.measures import Latency, LoneLatency, Throughput


@dataclass(frozen=True)
class RunResults:
    """Everything a run measured: (a), (b), (c) combined over the rounds, each round's (a) and
    (b), (d), the ledger checks, and the engine's batch size (c) used."""

    phases: list[Throughput]
    rounds: list[tuple[Throughput, Throughput]]
    latency: Latency
    lone: LoneLatency
    checks: list[tuple[str, LedgerCheck]]
    batch_size: int

    @property
    def ok(self) -> bool:
        return all(check.ok for _, check in self.checks)


def header(config: Config) -> list[str]:
    return [
        "Loyalty worker throughput benchmark",
        f"  broker          {config.broker}",
        f"  result backend  {config.result_backend}",
        f"  database        {config.database_url}",
        f"  commands        {config.commands} over {config.customers} customers of one shop",
        f"  worker          celery -A workers.app worker -Q {QUEUE} -c {config.concurrency} "
        "-P prefork --without-gossip --without-mingle --without-heartbeat -l warning "
        "(+ -I bench.noop for b)",
        f"  host            {os.cpu_count()} CPUs, load average {load()} at start",
        f"  started         {datetime.now(UTC).isoformat(timespec='seconds')}",
    ]


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(results: RunResults) -> list[str]:
    """The lines printed after the phases (and kept in the JSON copy)."""
    return [
        *throughput_lines(results.phases),
        *ratio_lines(results.phases, results.rounds),
        *latency_lines(results.latency),
        *lone_lines(results.lone),
        "",
        "checks:",
        *(f"    after {when}: {check.describe()}" for when, check in results.checks),
        *how_to_read(),
    ]


def throughput_lines(phases: Sequence[Throughput]) -> list[str]:
    lines = [
        "",
        f"{'throughput':<36}{'done':>7}{'span s':>9}{'rate/s':>9}{'ms/cmd/proc':>13}"
        f"{'wall s':>9}{'wall rate/s':>13}",
    ]
    for phase in phases:
        lines.append(
            f"{phase.label:<36}{phase.count:>7}{phase.span:>9.2f}{phase.rate:>9.1f}"
            f"{phase.ms_per_command_per_process:>13.2f}{phase.wall_seconds:>9.2f}"
            f"{phase.wall_rate:>13.1f}"
        )
    lines += ["", f"{'CPU per command':<36}{'own ms':>9}{'host ms':>9}{'host busy':>11}"]
    for phase in phases:
        lines.append(
            f"{phase.label:<36}{phase.own_cpu_ms:>9.2f}{phase.host_cpu_ms:>9.2f}"
            f"{phase.host_busy:>11.0%}"
        )
    return lines


def ratio_lines(
    phases: Sequence[Throughput], rounds: Sequence[tuple[Throughput, Throughput]]
) -> list[str]:
    """a/b and a/c, overall and by round, and what the differences per command consist of."""
    end_to_end, noop, database = phases
    a_b = end_to_end.ms_per_command_per_process - noop.ms_per_command_per_process
    a_c = end_to_end.ms_per_command_per_process - database.ms_per_command_per_process
    return [
        "",
        f"a/b = {end_to_end.rate / noop.rate:.3f}   the real task's rate as a share of Celery's "
        f"no-op rate on this broker ({end_to_end.rate:.0f} vs {noop.rate:.0f}/s)",
        f"a/c = {end_to_end.rate / database.rate:.3f}   the real task's rate as a share of the "
        f"same engine without Celery ({end_to_end.rate:.0f} vs {database.rate:.0f}/s)",
        f"a/b by round ({len(rounds)} rounds of ~{end_to_end.count // len(rounds)}, "
        "order a b, b a, ...): "
        + ", ".join(
            f"{adjusted.rate / noop.rate:.2f} ({adjusted.rate:.0f}/{noop.rate:.0f})"
            for adjusted, noop in rounds
        ),
        f"per command and process, a takes {a_b:.2f} ms more than b (the engine: validation,",
        f"planning, SQLAlchemy, its SQL) and {a_c:.2f} ms more than c (Celery: broker, batching,",
        "results, acks, publishing the outbox)",
    ]


def latency_lines(latency: Latency) -> list[str]:
    return [
        "",
        f"(d) publish-to-commit latency at a steady {latency.target_rate:.0f}/s "
        f"(half of a; achieved {latency.publish_rate:.0f}/s), {latency.count} commands "
        f"after {latency.warmup} warm-up ones:",
        f"    p50 {latency.p50_ms:.1f} ms   p90 {latency.p90_ms:.1f} ms   "
        f"p99 {latency.p99_ms:.1f} ms   max {latency.max_ms:.1f} ms   "
        f"mean {latency.mean_ms:.1f} ms",
        f"    the slowest 1 % were published {latency.slowest_published[0]:.1f} to "
        f"{latency.slowest_published[1]:.1f} s into the {latency.seconds:.1f} s "
        "(a narrow window points at one stall)",
    ]


def lone_lines(lone: LoneLatency) -> list[str]:
    return [
        f"(d) a lone command ({lone.count} sent one at a time to the idle worker): publish to "
        f"commit p50 {lone.commit_p50_ms:.1f} ms, p99 {lone.commit_p99_ms:.1f} ms;",
        f"    publish to result (the publisher's wait) p50 {lone.result_p50_ms:.1f} ms, "
        f"p99 {lone.result_p99_ms:.1f} ms",
    ]


def how_to_read() -> list[str]:
    return [
        "",
        "how to read it:",
        "    span = first to last completion; rate = (done - 1) / span, each summed over the",
        "    rounds (a and b alternate so both see the same machine). Completion is",
        "    processed_commands.created_at for (a) and (c) (the batch's clock, read after its",
        "    locking read and before its writes: one time for a whole batch, a few ms before",
        "    its commit) and the no-op's time.time() for (b), pushed to a Redis list (RPUSH:",
        "    one round trip, ~0.1 ms per task, counted in b's cost).",
        "    wall = from the worker's first ping reply ((c): the processes' start barrier) to",
        f"    the poll (every {POLL_INTERVAL} s) that saw all done; the worker starts draining",
        "    before it answers the ping, so wall rate counts only what was done after that reply.",
        "    ms/cmd/proc = processes * 1000 / rate: the time one process spends per command.",
        "    own ms = CPU of the worker and its pool (/proc/PID/stat; (c): the engine processes'",
        "    process_time()) and host ms = busy CPU of the whole host (/proc/stat), both over",
        "    the wall window / commands done in it. The difference is PostgreSQL, the broker,",
        "    the result backend, this client's polling and anything else running.",
        "    (c) = command_engine.apply_batch in the worker's batches, no Celery; the outbox",
        "    rows it writes are left unpublished.",
        "    (d): publish time = time.time() just before send_task, commit time =",
        "    processed_commands.created_at; the worker was idle and ready before publishing.",
        f"    load average at the end {load()} (includes the benchmark's own processes; any",
        "    other work on the host shows in host ms and skews every phase).",
    ]


def as_json(config: Config, results: RunResults, lines: Sequence[str]) -> dict[str, Any]:
    """The JSON copy: every figure, (d)'s per-command latencies and the printed report."""
    end_to_end, noop, database = results.phases
    return {
        "config": asdict(config),
        "batch_max_commands": results.batch_size,
        "phases": [
            {**asdict(phase), "span": phase.span, "rate": phase.rate} for phase in results.phases
        ],
        "ratios": {
            "a/b": end_to_end.rate / noop.rate,
            "a/c": end_to_end.rate / database.rate,
            "a/b by round": [adjusted.rate / noop.rate for adjusted, noop in results.rounds],
        },
        "latency": asdict(results.latency),
        "lone": asdict(results.lone),
        "checks": {when: {**asdict(check), "ok": check.ok} for when, check in results.checks},
        "report": list(lines),
    }


def save(config: Config, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    scheme = urlsplit(config.broker).scheme or "broker"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"throughput-{scheme}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
