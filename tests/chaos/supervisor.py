"""Keeps one ``celery worker -c 2`` and one ``celery beat`` running, as systemd or Kubernetes
would: a process that dies is started again within a moment. The faults kill; this revives.

The worker is ``workers.process.WorkerProcess`` (its own process group, so ``kill -9`` of the
group reaches the pool too), on every queue the scenario's commands and emails use. Each
incarnation gets its own node name and log file under the run's log directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from celery import Celery

from tests.chaos.processes import alive, children_of, wait_until
from workers.process import ROOT, WorkerProcess

QUEUES = "loyalty.adjustments,loyalty.tiers,loyalty.emails,loyalty.outbox"
WATCH_INTERVAL = 0.2
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


class Supervisor:
    def __init__(self, env: Mapping[str, str], log_dir: Path, run_dir: Path) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.schedule_path = run_dir / "celerybeat-schedule"
        self.worker_starts = 0
        self.beat_starts = 0
        self._worker: WorkerProcess | None = None
        self._beat: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="chaos-supervisor", daemon=True)

    def start(self, app: Celery) -> float:
        """Start both and wait for the worker's first ping reply; returns how long that took."""
        with self._lock:
            self._start_worker()
            self._start_beat()
            worker = self._worker
        assert worker is not None
        took = worker.wait_ready(app, READY_TIMEOUT)
        self._watcher.start()
        return took

    def worker_pid(self) -> int | None:
        with self._lock:
            worker = self._worker
        if worker is None or worker.process is None or worker.process.poll() is not None:
            return None
        return worker.pid

    def pool_children(self, timeout: float = 15.0) -> list[int]:
        """The pool processes of the current worker, waiting for a (re)started one to fork them."""
        found: list[int] = []

        def forked() -> bool:
            pid = self.worker_pid()
            found[:] = children_of(pid) if pid is not None else []
            return bool(found)

        with contextlib.suppress(TimeoutError):
            wait_until(forked, timeout, "worker pool processes", 0.1)
        return list(found)

    def running_worker(self, timeout: float = 15.0) -> int | None:
        """The current worker's pid, waiting for one that is being restarted."""
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: self.worker_pid() is not None, timeout, "a running worker", 0.1)
        return self.worker_pid()

    def kill_worker_group(self, pid: int) -> None:
        """``kill -9`` of worker ``pid``'s whole process group: main process and pool at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def close(self) -> None:
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(5)
        with self._lock:
            if self._beat is not None and self._beat.poll() is None:
                _stop_group(self._beat)
            if self._worker is not None:
                self._worker.stop(STOP_TIMEOUT)
                if self._worker.process is not None:
                    _kill_leftovers(self._worker.process.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL):
            with self._lock:
                if self._stopping.is_set():
                    return
                if self.worker_pid() is None:
                    self._start_worker()
                if self._beat is None or self._beat.poll() is not None:
                    self._start_beat()

    def _start_worker(self) -> None:
        self.worker_starts += 1
        if self._worker is not None and self._worker.process is not None:
            _kill_leftovers(self._worker.process.pid)
        self._worker = WorkerProcess(
            f"chaos-{self.worker_starts}",
            self.log_dir / f"worker-{self.worker_starts}.log",
            queues=QUEUES,
            concurrency=2,
            env=self.env,
            cwd=ROOT,
            log_level="info",
        ).start()

    def _start_beat(self) -> None:
        self.beat_starts += 1
        log_path = self.log_dir / f"beat-{self.beat_starts}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "workers.app", "beat",
            "-s", str(self.schedule_path), "-l", "info",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            self._beat = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _kill_leftovers(group: int) -> None:
    """A pool process whose main process died may outlive it for a moment: never leave one
    behind to take messages from the next incarnation."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(group):
        time.sleep(0.05)
