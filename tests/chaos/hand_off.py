"""Kill a worker the moment Redis hands it a message, before it can record it as unacknowledged.

kombu takes a message with BRPOP and only then writes it into the ``unacked`` hash, a couple of
milliseconds later: a worker killed in between takes the message with it. A kill at a random time
rarely lands there, so this watches Redis's MONITOR stream for an LPUSH onto the queue while a
worker's BRPOP on it is pending (Redis hands that message over at once) and kills the worker's
process group on the spot. It runs as a process of its own, so that no thread of the harness
holding the GIL can make it miss the window:

    python -m tests.chaos.hand_off PORT QUEUE PROCESS_GROUP TIMEOUT

Exit status 0: killed at a hand-off (it prints how many milliseconds after it); 1: no hand-off
within TIMEOUT seconds; 2: Redis unreachable.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
import time

KILLED, NO_HAND_OFF, NO_REDIS = 0, 1, 2


def wait_for_hand_off(port: int, queue: str, timeout: float) -> float | None:
    """As soon as Redis runs an LPUSH onto ``queue`` while a client's BRPOP on it is pending
    (Redis then hands that client the message), the server's time of that LPUSH; None after
    ``timeout`` seconds without one."""
    deadline = time.monotonic() + timeout
    waiting: dict[bytes, list[bytes]] = {}
    """Client (address:port) -> the keys of its pending BRPOP."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(b"MONITOR\r\n")
        lines = connection.makefile("rb")
        if lines.readline().strip() != b"+OK":
            return None
        while time.monotonic() < deadline:
            connection.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                line = lines.readline()
            except TimeoutError:
                return None
            client, name, args = _parse(line)
            if name in (b"LPUSH", b"RPUSH") and args:
                served = next((c for c, keys in waiting.items() if args[0] in keys), None)
                if served is not None and args[0] == queue.encode():
                    return float(line[1:].split(b" ", 1)[0])
                waiting.pop(served or b"", None)  # served from another queue: busy now
            elif name == b"BRPOP":
                waiting[client] = args[:-1]
            else:
                waiting.pop(client, None)
    return None


_ARGUMENT = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def _parse(line: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """``+1733100000.123456 [0 127.0.0.1:5555] "LPUSH" "key" "value"`` -> client, command name
    and arguments (as MONITOR escapes them; of a push, only the key is read)."""
    head, _, command = line.partition(b"] ")
    client = head.rsplit(b" ", 1)[-1]
    name = _ARGUMENT.match(command)
    if name is None:
        return client, b"", []
    rest = command[name.end() :]
    if name.group(1).upper() in (b"LPUSH", b"RPUSH"):
        key = _ARGUMENT.search(rest)
        return client, name.group(1).upper(), [key.group(1)] if key else []
    return client, name.group(1).upper(), _ARGUMENT.findall(rest)


def main(argv: list[str]) -> int:
    port, queue, group, timeout = int(argv[0]), argv[1], int(argv[2]), float(argv[3])
    _run_first()
    try:
        handed_over_at = wait_for_hand_off(port, queue, timeout)
    except OSError:
        return NO_REDIS
    if handed_over_at is None:
        return NO_HAND_OFF
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    print(f"{(time.time() - handed_over_at) * 1000:.1f}")  # ms from the hand-off to the kill
    return KILLED


def _run_first() -> None:
    """Real-time priority where allowed (root): on a busy machine an ordinary process can wait
    several milliseconds to run after its MONITOR line arrives, and the worker records the
    message in that time. This process only reads a socket and then exits."""
    with contextlib.suppress(AttributeError, PermissionError, OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
