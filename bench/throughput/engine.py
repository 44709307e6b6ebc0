"""Phase (c), the database ceiling: the engine without Celery.

As many processes as the worker has apply the commands through the project's own code
(``Database(...).unit_of_work()`` and ``command_engine.apply_batch``), in the worker's batches
(``LOYALTY_BATCH_MAX_COMMANDS`` consecutive commands, dealt to the processes in turn as the
worker's consumer hands them to its pool), one transaction each, with no broker, result backend
or acknowledgement. Nothing here spells out SQL, so (c) cannot drift from what (a) runs. The
outbox rows the engine writes are left unpublished: publishing them is part of (a)'s cost.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from typing import TYPE_CHECKING, Any

from bench.throughput.config import DIRECT_SQL, Config, say
from bench.throughput.cpu import host_cpu
from bench.throughput.database import BenchDatabase
from bench.throughput.measures import Throughput
from bench.throughput.worker import drain_timeout

if TYPE_CHECKING:
    from multiprocessing.queues import Queue as ProcessQueue
    from multiprocessing.synchronize import Barrier

Batch = list[dict[str, Any]]
ShareOutcome = tuple[float, int, str | None]
"""What one process reports: its CPU seconds, the outbox rows it left unpublished, its error."""


def batch_size() -> int:
    """The worker's batch size: draining a full queue, every batch it applies is this big."""
    from workers.settings import settings

    return settings().batches.max_commands


def run_database_ceiling(config: Config, db: BenchDatabase, commands: Batch) -> Throughput:
    """(c): the commands through the engine, timed from the start barrier to the last process."""
    processes, size = config.concurrency, batch_size()
    batches = [commands[first : first + size] for first in range(0, len(commands), size)]
    say(
        f"(c) database ceiling: {len(commands)} commands through command_engine.apply_batch, "
        f"{len(batches)} transactions of up to {size}, from {processes} processes, no Celery"
    )
    wall, host, outcomes = run_processes(config, batches, len(commands))
    errors = [error for _, _, error in outcomes if error]
    if errors:
        raise RuntimeError(f"(c) process failed: {errors}")
    say(f"    {sum(rows for _, rows, _ in outcomes)} outbox rows written, left unpublished")
    times = db.commit_times(DIRECT_SQL).values()
    if len(times) != len(commands):
        raise RuntimeError(f"(c) committed {len(times)} of {len(commands)}")
    return Throughput(
        f"(c) engine x{processes}: database ceiling",
        len(commands),
        min(times),
        max(times),
        wall,
        0,
        processes,
        sum(cpu for cpu, _, _ in outcomes),
        host,
    )


def run_processes(
    config: Config, batches: list[Batch], count: int
) -> tuple[float, float, list[ShareOutcome]]:
    """Spawn the processes, release them together once each is connected; returns the wall
    seconds from the release to the last one done, the host's busy CPU seconds meanwhile, and
    each process's outcome."""
    processes = config.concurrency
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results: ProcessQueue[ShareOutcome] = context.Queue()
    children = [
        context.Process(
            target=apply_share,
            args=(config.database_url, batches[index::processes], start, results),
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    try:
        # A process that failed before the start broke the barrier: its outcome says why.
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=120)
        clock, host = time.perf_counter(), host_cpu()
        outcomes = [results.get(timeout=drain_timeout(count)) for _ in children]
        wall, host = time.perf_counter() - clock, host_cpu() - host
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
                child.join()
    return wall, host, outcomes


def apply_share(
    database_url: str,
    batches: list[Batch],
    start: Barrier,
    results: ProcessQueue[ShareOutcome],
) -> None:
    """One process of (c) (spawned: it imports the project itself, from the inherited
    environment); reports how it went, and releases the others from the barrier if it failed."""
    try:
        results.put(_apply_batches(database_url, batches, start))
    except Exception as exc:
        start.abort()
        results.put((0.0, 0, repr(exc)))


def _apply_batches(database_url: str, batches: list[Batch], start: Barrier) -> ShareOutcome:
    """As a worker's pool process applies a batch (``tasks.commands.apply_requests``): parse each
    message, one unit of work and one ``apply_batch`` (one transaction) per batch."""
    from models.domain.commands import ADJUST_POINTS
    from models.domain.parsing import parse_command_of
    from models.domain.side_effects import OutboxEntry
    from models.persistence.unit_of_work import UnitOfWork
    from models.services.command_engine import apply_batch
    from workers.db import Database

    database = Database(database_url)
    with database.engine.connect() as connection:  # connected before the clock starts
        connection.exec_driver_sql("SELECT 1")
    start.wait(timeout=120)
    cpu, unpublished = time.process_time(), 0
    for batch in batches:
        items = [parse_command_of(ADJUST_POINTS, command) for command in batch]
        owed: list[OutboxEntry] = []
        apply_batch(UnitOfWork(database.sessions, owed.extend), items)
        unpublished += len(owed)  # the worker would publish these here
    cpu = time.process_time() - cpu
    database.engine.dispose()
    return cpu, unpublished, None
