"""CPU counters read around each phase's wall window: the process tree under test and the whole
host, so what the phase costs PostgreSQL, the broker and the rest shows as the difference."""

from __future__ import annotations

import math
import os
from pathlib import Path


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (Linux /proc; NaN elsewhere)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        proc = Path(f"/proc/{current}")
        try:
            # utime, stime, cutime, cstime: the 14th to 17th fields, after "pid (comm)".
            total += sum(
                int(value)
                for value in proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[11:15]
            )
            for task in proc.joinpath("task").iterdir():
                pending += [int(child) for child in task.joinpath("children").read_text().split()]
        except (OSError, ValueError):
            if current == pid:
                return math.nan
            # a child that exited meanwhile: its time is in its parent's cutime once reaped
    return total / os.sysconf("SC_CLK_TCK")


def host_cpu() -> float:
    """CPU seconds the host has spent busy since boot (all CPUs; NaN off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
