"""The faults, on a schedule fixed by the scenario and its seed, injected from a thread while the
commands are being published; each one's start and end are recorded for the report.

| kind | what it does |
| --- | --- |
| pool-child | ``kill -9`` of one pool process of the worker, chosen by the seeded generator |
| pool-child-before-hand-over | ``kill -9`` of the pool process talking to SMTP, at MAIL FROM |
| pool-child-after-hand-over | the same once the whole message arrived, before the reply |
| worker-group | ``kill -9`` of the worker's whole process group; the supervisor starts another |
| worker-group-at-hand-off | the same the moment the broker hands the worker a command (Redis) |
| broker | the broker's fault: Redis killed and started again, or RabbitMQ connections closed |
| postgres-crash | ``kill -9`` of the postmaster and every backend, then a start (crash recovery) |
| postgres-outage | PostgreSQL stopped (immediate); other faults may follow while it is down |
| postgres-back | the end of the outage: PostgreSQL started again |
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from models.domain.names import ADJUSTMENTS_QUEUE
from tests.chaos.brokers import Broker
from tests.chaos.mailbox import Mailbox, Stage
from tests.chaos.postgres import PostgresServer
from tests.chaos.processes import sigkill, socket_owner
from tests.chaos.supervisor import Supervisor

SMTP_KILL_WAIT = 20.0
"""Longest an armed SMTP kill waits for a conversation before it is recorded as not fired."""
HAND_OFF_WAIT = 20.0
"""Longest a kill at hand-off waits for the broker to hand the worker a command."""

NOT_FIRED = "not fired"

OFFBEAT = 0.1
"""Up to this many seconds of seeded jitter on every fault time."""


@dataclass(frozen=True)
class PlannedFault:
    at: float
    """Seconds after publishing starts."""
    kind: str


@dataclass
class FaultRecord:
    kind: str
    planned_at: float
    started: float = 0.0
    """``time.time()`` when the fault hit."""
    ended: float = 0.0
    """``time.time()`` when it was over (the server back); 0 if it never fired."""
    note: str = ""


class FaultInjector:
    def __init__(
        self,
        supervisor: Supervisor,
        postgres: PostgresServer,
        broker: Broker,
        mailbox: Mailbox,
        seed: int,
    ) -> None:
        self.supervisor = supervisor
        self.postgres = postgres
        self.broker = broker
        self.mailbox = mailbox
        self.rng = random.Random(seed)
        self.records: list[FaultRecord] = []
        self.errors: list[str] = []
        self._outage: FaultRecord | None = None

    @property
    def last_fault_end(self) -> float:
        return max((record.ended for record in self.records), default=0.0)

    def run(self, plan: list[PlannedFault], start: float, stop: threading.Event) -> None:
        """Inject ``plan`` in order, each no sooner than ``start`` (monotonic) + its ``at``.
        A fault that fails is recorded and ends the schedule: the run cannot be trusted after.
        PostgreSQL is never left stopped, whatever happens."""
        try:
            for fault in plan:
                if stop.wait(max(0.0, start + fault.at - time.monotonic())):
                    return
                try:
                    self._inject(fault, stop)
                except Exception as error:
                    self.errors.append(
                        f"{fault.kind} at {fault.at:.1f}s: {type(error).__name__}: {error}"
                    )
                    return
        finally:
            if self._outage is not None:
                self._end_outage()

    def _inject(self, fault: PlannedFault, stop: threading.Event) -> None:
        if fault.kind == "postgres-back":
            self._end_outage()
            return
        record = FaultRecord(fault.kind, fault.at, started=time.time())
        self.records.append(record)
        if fault.kind == "postgres-outage":
            self.postgres.stop("immediate")
            record.note = "stopped (immediate), "
            self._outage = record
            return
        try:
            record.note = self._strike(fault.kind, record, stop)
        except Exception as error:
            record.note = f"failed: {error}"
            raise
        finally:
            if not record.note.startswith(NOT_FIRED):
                record.ended = time.time()

    def _strike(self, kind: str, record: FaultRecord, stop: threading.Event) -> str:
        if kind == "pool-child":
            return self._kill_pool_child()
        if kind == "pool-child-before-hand-over":
            return self._kill_smtp_client("mail", record, stop)
        if kind == "pool-child-after-hand-over":
            return self._kill_smtp_client("data", record, stop)
        if kind == "worker-group":
            pid = self.supervisor.running_worker()
            if pid is None:
                return "no worker running"
            self.supervisor.kill_worker_group(pid)
            return f"group {pid}"
        if kind == "worker-group-at-hand-off":
            return self._kill_worker_at_hand_off(record)
        if kind == "broker":
            self.broker.fault()
            return self.broker.fault_name
        if kind == "postgres-crash":
            self.postgres.crash()
            self.postgres.start()
            return "kill -9 of postmaster and backends; started again (crash recovery)"
        raise ValueError(f"unknown fault kind {kind!r}")

    def _end_outage(self) -> None:
        outage, self._outage = self._outage, None
        if outage is None:
            return
        self.postgres.start()
        outage.ended = time.time()
        outage.note += f"started again {outage.ended - outage.started:.1f}s later"

    def _kill_worker_at_hand_off(self, record: FaultRecord) -> str:
        pid = self.supervisor.running_worker()
        if pid is None:
            return "no worker running"
        how = self.broker.kill_at_hand_off(pid, ADJUSTMENTS_QUEUE, HAND_OFF_WAIT)
        if how is None:
            return f"{NOT_FIRED}: no command handed to the worker within {HAND_OFF_WAIT:g}s"
        record.started = time.time()
        return f"group {pid}, {how}"

    def _kill_pool_child(self) -> str:
        children = self.supervisor.pool_children()
        if not children:
            return "no pool process found"
        victim = self.rng.choice(children)
        sigkill(victim)
        return f"pid {victim} of {len(children)}"

    def _kill_smtp_client(self, stage: Stage, record: FaultRecord, stop: threading.Event) -> str:
        fired = threading.Event()
        killed: list[int] = []

        def kill(port: int) -> bool:
            pid = socket_owner(port, self.supervisor.pool_children(timeout=0))
            if pid is None:
                return False
            sigkill(pid)
            killed.append(pid)
            return True

        def hit() -> None:
            record.started = time.time()
            fired.set()

        self.mailbox.arm(stage, kill, hit)
        deadline = time.monotonic() + SMTP_KILL_WAIT
        while not fired.wait(0.1) and time.monotonic() < deadline and not stop.is_set():
            pass
        self.mailbox.disarm(stage)
        if not fired.is_set():
            return f"{NOT_FIRED}: no SMTP conversation within {SMTP_KILL_WAIT:g}s"
        moment = "at MAIL FROM" if stage == "mail" else "after the whole message, before the reply"
        return f"pid {killed[0]} {moment}"


def plan_faults(
    publish_seconds: float, outage_seconds: float, seed: int, jitter: float = 0.02
) -> list[PlannedFault]:
    """Every kind at least once, most several times, while commands are being published:

    - in the first 40 % of the window, each kind once (two plain pool kills);
    - the outage from 45 % on, with a worker kill and a pool kill inside it;
    - after it, while the backlog drains and until 90 % of the window, a broker fault, a worker
      kill and a pool kill at the SMTP server.

    Times before the outage move by up to ``jitter`` of the window, from ``seed``."""
    rng = random.Random(seed)
    window = publish_seconds
    first = [
        "pool-child", "worker-group", "pool-child-before-hand-over", "broker", "pool-child",
        "postgres-crash", "pool-child-after-hand-over", "worker-group-at-hand-off",
    ]  # fmt: skip
    plan = [
        PlannedFault(window * (0.05 * (n + 1) + rng.uniform(-jitter, jitter)), kind)
        for n, kind in enumerate(first)
    ]
    outage_at = window * 0.45
    back = outage_at + outage_seconds
    plan += [
        PlannedFault(outage_at, "postgres-outage"),
        PlannedFault(outage_at + outage_seconds / 3, "worker-group"),
        PlannedFault(outage_at + 2 * outage_seconds / 3, "pool-child"),
        PlannedFault(back, "postgres-back"),
    ]
    after = ["broker", "worker-group-at-hand-off", "pool-child-before-hand-over"]
    step = max((window * 0.9 - back) / len(after), 1.0)
    plan += [PlannedFault(back + step * (n + 1), kind) for n, kind in enumerate(after)]
    # Anywhere between two publishes, not in step with them: where a kill lands relative to a
    # message being handed over decides whether a two-step hand-over loses it.
    return [PlannedFault(f.at + rng.uniform(0, OFFBEAT), f.kind) for f in plan]
