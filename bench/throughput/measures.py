"""What a phase measured: a drain's throughput (rate, wall time, CPU per command) or the
publish-to-commit latency at a steady rate, and the arithmetic that turns raw times into both."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Throughput:
    label: str
    count: int
    first: float
    """Epoch seconds of the first completion (commit or no-op return)."""
    last: float
    wall_seconds: float
    """From the worker's first ping reply (c: the start barrier) to the poll that saw all done."""
    done_at_start: int
    """Completions already there when the wall clock started (the worker drains before it
    answers its first ping)."""
    processes: int
    own_cpu_seconds: float
    """CPU of the worker and its pool ((c): the engine's processes) during the wall window."""
    host_cpu_seconds: float
    """CPU the whole host spent busy during the wall window (PostgreSQL, Redis, this client...)."""
    segments: int = 1
    """Separately drained rounds added together: their spans add up, their gaps do not count."""

    @property
    def span(self) -> float:
        return self.last - self.first

    @property
    def rate(self) -> float:
        """(count - 1) intervals between the first and the last completion, per segment."""
        return (self.count - self.segments) / self.span if self.span > 0 else math.nan

    @property
    def wall_rate(self) -> float:
        counted = self.count - self.done_at_start
        return counted / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def ms_per_command_per_process(self) -> float:
        return 1000 * self.processes / self.rate

    @property
    def own_cpu_ms(self) -> float:
        return self._per_counted_command(self.own_cpu_seconds)

    @property
    def host_cpu_ms(self) -> float:
        return self._per_counted_command(self.host_cpu_seconds)

    def _per_counted_command(self, seconds: float) -> float:
        counted = self.count - self.done_at_start
        return 1000 * seconds / counted if counted else math.nan

    @property
    def host_busy(self) -> float:
        """Share of all the host's CPUs busy during the wall window."""
        return self.host_cpu_seconds / (self.wall_seconds * (os.cpu_count() or 1))


def combine(parts: Sequence[Throughput]) -> Throughput:
    """Rounds of one phase as one measurement: counts, spans, wall time and CPU add up."""
    return Throughput(
        parts[0].label,
        sum(part.count for part in parts),
        0.0,
        sum(part.span for part in parts),
        sum(part.wall_seconds for part in parts),
        sum(part.done_at_start for part in parts),
        parts[0].processes,
        sum(part.own_cpu_seconds for part in parts),
        sum(part.host_cpu_seconds for part in parts),
        sum(part.segments for part in parts),
    )


@dataclass(frozen=True)
class Latency:
    target_rate: float
    publish_rate: float
    seconds: float
    warmup: int
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    slowest_published: tuple[float, float]
    """When (seconds into the steady publishing) the slowest 1 % were published: a narrow
    window means one stall, a wide one a spread-out tail."""
    series: list[tuple[float, float]]
    """(seconds into the publishing, latency ms) per command, in publish order."""


@dataclass(frozen=True)
class LoneLatency:
    """Commands sent one at a time to an idle worker, each once the previous one's result was
    back: what a command that finds nothing queued waits."""

    count: int
    commit_p50_ms: float
    commit_p99_ms: float
    result_p50_ms: float
    result_p99_ms: float

    @classmethod
    def of(cls, to_commit: Sequence[float], to_result: Sequence[float]) -> LoneLatency:
        """From seconds, publish to commit and publish to result, one of each per command."""
        commits, answers = sorted(to_commit), sorted(to_result)
        return cls(
            count=len(commits),
            commit_p50_ms=1000 * percentile(commits, 0.50),
            commit_p99_ms=1000 * percentile(commits, 0.99),
            result_p50_ms=1000 * percentile(answers, 0.50),
            result_p99_ms=1000 * percentile(answers, 0.99),
        )


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarize_latency(
    published: dict[str, float],
    committed: dict[str, float],
    target_rate: float,
    publishing: float,
    warmup: int,
) -> Latency:
    """Publish and commit times (epoch seconds, by command id) as percentiles and a series."""
    first_sent = min(published.values())
    series = [
        (sent - first_sent, 1000 * (committed[key] - sent)) for key, sent in published.items()
    ]
    latencies = sorted(latency for _, latency in series)
    p99 = percentile(latencies, 0.99)
    slowest = [offset for offset, latency in series if latency >= p99]
    return Latency(
        target_rate=target_rate,
        publish_rate=(len(published) - 1) / publishing if publishing > 0 else math.nan,
        seconds=publishing,
        warmup=warmup,
        count=len(latencies),
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=p99,
        max_ms=latencies[-1],
        mean_ms=sum(latencies) / len(latencies),
        slowest_published=(min(slowest), max(slowest)),
        series=series,
    )
