"""Kill a worker the moment Redis hands it a message.

The worker's consume script takes a message off its queue and records it as unacknowledged in one
step; a worker killed right after must not take the message with it (the restore sweep hands it
to another). A kill at a random time rarely lands there, so this watches Redis's MONITOR stream for
the script recording a message it has just popped from the queue, and kills the worker's process
group on the spot. It runs as a process of its own, so that no thread of the harness holding the
GIL can make it miss the moment:

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
    """As soon as the consume script records a message it popped from ``queue``, the server's time
    of that step; None after ``timeout`` seconds without one."""
    deadline = time.monotonic() + timeout
    popped_from = b""
    """The key of the script's latest RPOP: the one that found a message, when it records one."""
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
            if client != b"lua" or not args:
                continue
            if name == b"RPOP":
                popped_from = args[0]
            elif name == b"ZADD" and popped_from == queue.encode():
                return float(line[1:].split(b" ", 1)[0])
    return None


_ARGUMENT = re.compile(rb'"((?:[^"\\]|\\.)*)"')


def _parse(line: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """``+1733100000.123456 [0 lua] "RPOP" "key"`` -> client (``lua`` inside a script), command
    name and arguments (as MONITOR escapes them; of a push, only the key is read)."""
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
    several milliseconds to run after its MONITOR line arrives, and the worker has moved on in
    that time. This process only reads a socket and then exits."""
    with contextlib.suppress(AttributeError, PermissionError, OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
