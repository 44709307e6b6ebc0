"""The two brokers the scenario runs on, each with the one fault it can inject there.

Redis is a server of the suite's own (append-only file, ``appendfsync always``), so it can be
killed and started again on the same port and directory. RabbitMQ is the machine's shared server,
never restarted: the suite gets a vhost of its own and closes that vhost's connections instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Protocol

import redis

from tests.chaos import hand_off
from tests.chaos.processes import free_port, wait_until
from tests.chaos.redis_trace import explain_lost
from workers.process import ROOT

START_TIMEOUT = 30.0
RABBITMQ_PORT = 5672


class Broker(Protocol):
    name: str
    fault_name: str
    """What ``fault()`` does, for the schedule."""

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def fault(self) -> None: ...

    def kill_at_hand_off(self, group: int, queue: str, timeout: float) -> str | None:
        """``kill -9`` of process ``group`` the moment the broker hands one of its processes a
        message of ``queue``, while it may not have recorded it yet; says how it went, or None
        (and no kill) if the broker handed none within ``timeout``."""
        ...

    def explain_lost(self, command_ids: set[str]) -> dict[str, str]:
        """What the broker can tell about each lost command (nothing, on RabbitMQ)."""
        ...

    def close(self) -> None: ...


class RedisServer:
    """``redis-server`` on a free port; ``fault()`` is ``kill -9`` then a start on the same
    append-only file, which must bring back every acknowledged write."""

    name = "redis"
    fault_name = "Redis restart (kill -9, start on the same append-only file)"

    def __init__(self, log_dir: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        self.port = free_port()
        self.log_path = log_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.root), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._answers, START_TIMEOUT, "Redis answering PING after loading", 0.05)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited ({self.process.returncode}); see {self.log_path}"
            )
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def fault(self) -> None:
        self._kill()
        self.start()

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def kill_at_hand_off(self, group: int, queue: str, timeout: float) -> str | None:
        """Kill process ``group`` the moment Redis hands one of its processes a message of
        ``queue`` (``tests.chaos.hand_off``, in a process of its own)."""
        helper = [sys.executable, "-m", "tests.chaos.hand_off"]
        arguments = [str(self.port), queue, str(group), f"{timeout:g}"]
        done = subprocess.run(
            [*helper, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=timeout + 30
        )
        if done.returncode not in (hand_off.KILLED, hand_off.NO_HAND_OFF):
            raise RuntimeError(f"hand-off watcher failed ({done.returncode}): {done.stderr}")
        if done.returncode == hand_off.NO_HAND_OFF:
            return None
        return f"{done.stdout.strip()} ms after Redis handed it a command"

    def explain_lost(self, command_ids: set[str]) -> dict[str, str]:
        return explain_lost(self.root / "appendonlydir", command_ids)

    def close(self) -> None:
        """Stop the server, keep its append-only file with the logs (it is the broker's whole
        history, for whoever investigates a lost command), remove the rest."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self._kill()
            aof = self.root / "appendonlydir"
            if aof.is_dir():
                shutil.copytree(
                    aof, self.log_path.parent / "redis-appendonlydir", dirs_exist_ok=True
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class RabbitVhost:
    """A vhost of the suite's own on the machine's RabbitMQ; ``fault()`` closes every connection
    to it (workers, beat and the publisher all lose theirs and must reconnect)."""

    name = "rabbitmq"
    fault_name = "RabbitMQ: every connection of the vhost closed by the server"

    def __init__(self) -> None:
        self.vhost = f"chaos-{uuid.uuid4().hex[:10]}"
        self._created = False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{RABBITMQ_PORT}/{self.vhost}"

    def start(self) -> None:
        rabbitmqctl("add_vhost", self.vhost)
        self._created = True
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def fault(self) -> None:
        rabbitmqctl(
            "close_all_connections", "--vhost", self.vhost, "--limit", "1000",
            "chaos suite: connection closed on purpose",
        )  # fmt: skip

    def kill_at_hand_off(self, group: int, queue: str, timeout: float) -> str | None:
        """At once: RabbitMQ requeues every unacknowledged delivery when the consumer's
        connection dies, whenever that happens, so no moment is worse than another."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        return "at once (RabbitMQ requeues a dead consumer's deliveries whenever it dies)"

    def explain_lost(self, command_ids: set[str]) -> dict[str, str]:
        return {}

    def close(self) -> None:
        if self._created:
            rabbitmqctl("delete_vhost", self.vhost)
            self._created = False


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "--quiet", *args], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def rabbitmq_available() -> bool:
    """``rabbitmqctl`` is installed and its server answers (the suite never starts it)."""
    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        rabbitmqctl("list_vhosts")
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True
