"""``celery -A workers.app worker`` as a child process, for the demo, the tests and the bench."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from celery import Celery

ROOT = Path(__file__).resolve().parents[1]


class WorkerProcess:
    def __init__(
        self,
        name: str,
        log_path: Path,
        *,
        queues: str = "loyalty.adjustments",
        concurrency: int = 2,
        imports: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        events: bool = False,
        log_level: str = "warning",
    ) -> None:
        """``events`` sends task events (``-E``), for Flower."""
        self.nodename = f"{name}-{os.getpid()}@{socket.gethostname()}"
        self.command = [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker",
            "-Q", queues, "-c", str(concurrency), "-P", "prefork", "-n", self.nodename,
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", log_level,
        ]  # fmt: skip
        if events:
            self.command.append("-E")
        if imports:
            self.command += ["-I", ",".join(imports)]
        self.log_path = log_path
        self.env = dict(env if env is not None else os.environ)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None, "the worker was not started"
        return self.process.pid

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() can reach the pool too
            )
        return self

    def wait_ready(self, app: Celery, timeout: float = 60) -> float:
        """Wait for the worker's first ping reply (not on the embedded broker, which cannot
        broadcast); returns how long it took."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            self.check_alive()
            if app.control.ping(destination=[self.nodename], timeout=0.5, limit=1):
                return time.perf_counter() - started
        self.stop()
        raise RuntimeError(f"worker did not answer a ping within {timeout}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
