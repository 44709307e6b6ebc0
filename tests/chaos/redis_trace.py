"""Where a lost command's messages went on Redis, read back from the server's append-only file.

The file is every write the server made, in order, so replaying its list operations tells, for each
message (by its delivery tag), when it was queued, when a worker took it (RPOP), when it was
recorded as unacknowledged (HSET unacked: the consume script does both in one step) and when it was
let go (HDEL unacked: acknowledged, or restored to the queue by a visibility sweep). A lost
command's last step says what happened: still queued; taken but never recorded (a consumer that
does not record as it pops, such as kombu's own BRPOP); held by a dead worker and never restored;
or acknowledged without a stored result.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path

FATES = {
    "queued": "still queued when the run ended",
    "taken": (
        "taken from the queue and never recorded as unacked: consumed by something other than"
        " the worker's consume script, which records in the same step"
    ),
    "held": "recorded as unacked by a worker that died; never restored to the queue",
    "released": "acknowledged (or dropped from unacked) without a stored result",
}


def explain_lost(aof_dir: Path, command_ids: set[str]) -> dict[str, str]:
    """command_id -> the last step of each of its messages, for the ``command_ids`` asked."""
    files = sorted(aof_dir.glob("*.incr.aof"))
    if len(files) != 1:
        return dict.fromkeys(command_ids, "no trace: the append-only file was rewritten")
    steps = _replay(_commands(files[0].read_bytes()), command_ids)
    return {
        command_id: "; ".join(
            f"message {tag[:8]}: {' -> '.join(history)}: {FATES.get(history[-1], '?')}"
            for tag, history in steps.get(command_id, {}).items()
        )
        or "never reached Redis"
        for command_id in command_ids
    }


def _replay(
    commands: Iterator[list[bytes]], command_ids: set[str]
) -> dict[str, dict[str, list[str]]]:
    queues: dict[bytes, deque[str]] = defaultdict(deque)
    ours: dict[str, str] = {}
    """delivery tag -> command id, for the messages of the commands asked about."""
    steps: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def step(tag: str, what: str) -> None:
        if tag in ours:
            steps[ours[tag]][tag].append(what)

    for args in commands:
        name, key = args[0].upper(), args[1] if len(args) > 1 else b""
        if name in (b"LPUSH", b"RPUSH"):
            for raw in args[2:]:
                tag = _delivery_tag(raw, command_ids, ours)
                (queues[key].appendleft if name == b"LPUSH" else queues[key].append)(tag)
                step(tag, "queued")
        elif name in (b"RPOP", b"LPOP"):
            for _ in range(int(args[2]) if len(args) > 2 else 1):
                if queues[key]:
                    queue = queues[key]
                    step(queue.pop() if name == b"RPOP" else queue.popleft(), "taken")
        elif name == b"HSET" and key == b"unacked":
            step(args[2].decode(), "held")
        elif name == b"HDEL" and key == b"unacked":
            for released in args[2:]:
                step(released.decode(), "released")
        elif name == b"DEL":
            for deleted in args[1:]:
                queues.pop(deleted, None)
    return steps


def _delivery_tag(raw: bytes, command_ids: set[str], ours: dict[str, str]) -> str:
    """The message's delivery tag; notes it in ``ours`` when it carries an asked-about command."""
    try:
        message = json.loads(raw)
        tag = str(message["properties"]["delivery_tag"])
        args = json.loads(base64.b64decode(message["body"]))[0]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    command = args[0] if args and isinstance(args[0], dict) else {}
    if command.get("command_id") in command_ids:
        ours[tag] = str(command["command_id"])
    return tag


def _commands(data: bytes) -> Iterator[list[bytes]]:
    """The commands of an append-only file: RESP arrays of bulk strings, one after another."""
    at = 0
    while at < len(data) and data[at : at + 1] == b"*":
        end = data.index(b"\r\n", at)
        count, at = int(data[at + 1 : end]), end + 2
        args = []
        for _ in range(count):
            end = data.index(b"\r\n", at)
            size, at = int(data[at + 1 : end]), end + 2
            args.append(data[at : at + size])
            at += size + 2
        yield args
