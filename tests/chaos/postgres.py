"""A PostgreSQL cluster of the suite's own, on a free port, that it may crash and stop at will.

Built with the binaries of the machine's install (``initdb`` into a temporary directory, then
``postgres`` on a free port), trust authentication on 127.0.0.1 and a private socket directory.
fsync stays on: a crash that loses committed transactions would be a fault of the test, not of
the code.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from tests.chaos.processes import alive, children_of, free_port, hand_to, sigkill, wait_until

START_TIMEOUT = 60.0


def postgres_bin_dir() -> Path:
    """Where ``postgres`` and ``initdb`` are: on the PATH, else the newest Debian install."""
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    installs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if not installs:
        raise RuntimeError("no PostgreSQL binaries (postgres, initdb) on this machine")
    return Path(installs[-1])


class PostgresServer:
    """``start()`` once, then ``crash()``, ``stop()`` and ``start()`` again as the faults need;
    ``close()`` stops it and removes its directory whatever state it is in.

    The postmaster runs as this process's own child (``postgres`` itself, not ``pg_ctl``, which
    would leave it to init): a killed postmaster is reaped here at once, so the next start never
    finds its pid still taken by a zombie and refuses to run."""

    user = "postgres"

    def __init__(self, log_dir: Path) -> None:
        self.bin = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        hand_to(self.root, self.user)
        self.data = self.root / "data"
        self.log_path = log_dir / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server_url(self) -> str:
        """SQLAlchemy URL of the server, without a database name."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}"

    def database_url(self, name: str) -> str:
        return f"{self.server_url}/{name}"

    def psycopg_url(self, name: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        if not self.data.exists():
            self._initdb()
        command = [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
            "-c", "max_connections=200", "-c", "shared_buffers=64MB",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_run_as(self.user),
            )
        wait_until(self.answers, START_TIMEOUT, "PostgreSQL accepting connections", 0.2)

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"postgres exited ({self.process.returncode}):\n{self.log_tail()}")
        try:
            with psycopg.connect(self.psycopg_url("postgres"), connect_timeout=2) as connection:
                connection.execute("select 1")
            return True
        except psycopg.OperationalError:
            return False

    def crash(self) -> None:
        """``kill -9`` of the postmaster and every backend: what a power cut leaves behind.
        The next ``start()`` runs crash recovery from the write-ahead log."""
        postmaster = self._running()
        backends = children_of(postmaster.pid)
        sigkill(postmaster.pid, *backends)
        postmaster.wait(10)
        wait_until(
            lambda: not any(alive(pid) for pid in backends), 10, "killed PostgreSQL backends gone"
        )

    def stop(self, mode: str = "immediate") -> None:
        """``immediate`` (SIGQUIT) aborts every session at once, as an outage does; ``fast``
        (SIGINT) rolls them back and shuts down cleanly."""
        postmaster = self._running()
        postmaster.send_signal({"immediate": signal.SIGQUIT, "fast": signal.SIGINT}[mode])
        postmaster.wait(30)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.psycopg_url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def close(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                try:
                    self.stop("fast")
                except subprocess.TimeoutExpired:
                    self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("PostgreSQL is not running")
        return self.process

    def _initdb(self) -> None:
        command = [
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user,
            "-E", "UTF8", "--no-instructions",
        ]  # fmt: skip
        done = subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            **_run_as(self.user),
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")


def _run_as(user: str) -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, run it as ``user``."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
