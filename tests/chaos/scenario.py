"""One chaos run on one broker: own servers, a supervised worker and beat, commands published
while the faults hit, then a wait for the system to settle and the count.

The short run (pytest) and the full run (``python -m bench.chaos``) are this same code; only the
``Scenario`` differs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.chaos.books import Observation, ScenarioDatabase, email_fates, wait_settled
from tests.chaos.brokers import Broker, RabbitVhost, RedisServer
from tests.chaos.faults import FaultInjector, FaultRecord, plan_faults
from tests.chaos.figures import Figures, RunFacts, count, email_problems
from tests.chaos.mailbox import Mailbox
from tests.chaos.postgres import PostgresServer
from tests.chaos.publishing import Publisher
from tests.chaos.supervisor import Supervisor
from tests.chaos.workload import Workload, plan_workload, prepare_database
from tests.support.celery_apps import app_for, close_app
from workers.process import ROOT

DEFAULT_LOG_ROOT = ROOT / ".loyalty" / "chaos"
DATABASE_NAME = "loyalty_chaos"
BROKERS = ("redis", "rabbitmq")
FAULTS_GRACE = 120.0
"""How long after publishing ends the fault thread may still run before the run gives up on it."""


@dataclass(frozen=True)
class Scenario:
    """The scale of a run. The defaults are the full run (``make chaos``)."""

    commands: int = 6000
    """Distinct commands (command ids)."""
    duplicates: int = 600
    """Of which this many are published a second time."""
    customers: int = 300
    publish_seconds: float = 330.0
    """The publishing window; the faults are spread over it. 6,600 messages in 330 s is 20 a
    second, well below what one worker of two processes applies here (about 33 commands a
    second with the emails), so the backlog of a 30 s outage drains within the bound."""
    outage_seconds: float = 30.0
    redelivery_bound: float = 120.0
    """``LOYALTY_REDELIVERY_BOUND`` for the workers, and the deadline every command must meet."""
    settle_margin: float = 30.0
    """Extra wait past the bound before what is missing counts as lost."""
    duplicate_spread: int = 300
    """A late second copy goes out up to this many messages after the first."""
    seed: int = 20261202

    @property
    def rate(self) -> float:
        """Messages published per second."""
        return (self.commands + self.duplicates) / self.publish_seconds


FULL = Scenario()
SHORT = Scenario(
    commands=400,
    duplicates=40,
    customers=100,
    publish_seconds=24.0,
    outage_seconds=10.0,
    redelivery_bound=30.0,
    settle_margin=10.0,
    duplicate_spread=100,
)


@dataclass
class Report:
    broker: str
    scenario: Scenario
    figures: Figures | None = None
    faults: list[FaultRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    publishing_started: float = 0.0
    seconds: float = 0.0
    log_dir: Path = DEFAULT_LOG_ROOT
    lost: dict[str, str] = field(default_factory=dict)
    """command_id -> what the broker says became of it, for every lost command."""
    emails: dict[str, str] = field(default_factory=dict)
    """Message-ID -> what went wrong and what the database says, for every email that was not
    delivered exactly once."""
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent setting up, publishing and tearing down (settling is in the figures)."""

    def problems(self) -> list[str]:
        figures = self.figures.problems() if self.figures is not None else ["no figures"]
        return [*self.errors, *figures]


def run_scenario(scenario: Scenario, broker: str, log_root: Path = DEFAULT_LOG_ROOT) -> Report:
    """Run ``scenario`` on ``broker`` ("redis" or "rabbitmq"); everything it started is stopped
    and every temporary directory removed before it returns, also when it fails."""
    began = time.monotonic()
    log_dir = log_root / broker
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    report = Report(broker, scenario, log_dir=log_dir)
    with contextlib.ExitStack() as cleanup:
        run = _start(scenario, broker, log_dir, cleanup)
        report.phases["setup"] = time.monotonic() - began
        _publish_under_faults(scenario, run.publisher, run.injector)
        report.phases["publishing"] = run.publisher.finished_at - run.publisher.started_at
        report.publishing_started = run.publisher.started_at
        report.faults, report.errors = run.injector.records, list(run.injector.errors)
        report.errors += [f"publish failed: {failure}" for failure in run.publisher.failures[:5]]
        try:
            report.figures, observation = _settle_and_count(scenario, run)
            report.lost = _explain_lost(run, observation)
            report.emails = _explain_emails(run, observation)
        except psycopg.Error as error:
            report.errors.append(f"could not count: {type(error).__name__}: {error}")
        counted = time.monotonic()
    report.phases["teardown"] = time.monotonic() - counted
    report.seconds = time.monotonic() - began
    return report


@dataclass(frozen=True)
class _Run:
    """Everything one run started, in the order it was started."""

    workload: Workload
    mailbox: Mailbox
    postgres: PostgresServer
    broker: Broker
    supervisor: Supervisor
    publisher: Publisher
    injector: FaultInjector

    @property
    def database(self) -> ScenarioDatabase:
        return ScenarioDatabase(self.postgres.psycopg_url(DATABASE_NAME))


def _start(
    scenario: Scenario, broker_name: str, log_dir: Path, cleanup: contextlib.ExitStack
) -> _Run:
    """The servers, the database with its customers, the worker and beat: all registered with
    ``cleanup`` as soon as they exist."""
    workload = plan_workload(
        commands=scenario.commands,
        duplicates=scenario.duplicates,
        customers=scenario.customers,
        duplicate_spread=scenario.duplicate_spread,
        seed=scenario.seed,
    )
    mailbox = Mailbox()
    cleanup.enter_context(mailbox)
    postgres = PostgresServer(log_dir)
    cleanup.callback(postgres.close)
    postgres.start()
    database_url = postgres.create_database(DATABASE_NAME)
    prepare_database(database_url, workload)
    broker = _broker(broker_name, log_dir)
    cleanup.callback(broker.close)
    broker.start()
    run_dir = Path(tempfile.mkdtemp(prefix="chaos-run-"))
    cleanup.callback(shutil.rmtree, run_dir, True)
    env = worker_environment(scenario, database_url, broker.url, mailbox.port, run_dir)
    app = app_for(env, "chaos-publisher")
    cleanup.callback(close_app, app)
    supervisor = Supervisor(env, log_dir, run_dir)
    cleanup.callback(supervisor.close)
    supervisor.start(app)
    injector = FaultInjector(supervisor, postgres, broker, mailbox, scenario.seed)
    publisher = Publisher(app, workload, scenario.rate, give_up_after=scenario.redelivery_bound)
    return _Run(workload, mailbox, postgres, broker, supervisor, publisher, injector)


def worker_environment(
    scenario: Scenario, database_url: str, broker_url: str, smtp_port: int, run_dir: Path
) -> dict[str, str]:
    """The worker's and beat's environment: the machine's, minus any LOYALTY_* setting of its
    own, plus the scenario's servers and timings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOYALTY_")}
    env.update(
        LOYALTY_DATABASE_URL=database_url,
        LOYALTY_BROKER_URL=broker_url,
        LOYALTY_RESULT_BACKEND="disabled",
        LOYALTY_SMTP_HOST="127.0.0.1",
        LOYALTY_SMTP_PORT=str(smtp_port),
        LOYALTY_REDELIVERY_BOUND=f"{scenario.redelivery_bound:g}",
        LOYALTY_OUTBOX_RELAY_INTERVAL="1",
        LOYALTY_OUTBOX_GRACE="2",
        LOYALTY_DATA_DIR=str(run_dir),
    )
    return env


def _broker(name: str, log_dir: Path) -> Broker:
    if name == "redis":
        return RedisServer(log_dir)
    if name == "rabbitmq":
        return RabbitVhost()
    raise ValueError(f"unknown broker {name!r}; expected one of {', '.join(BROKERS)}")


def _publish_under_faults(
    scenario: Scenario, publisher: Publisher, injector: FaultInjector
) -> None:
    """Publish on this thread while the faults run on another; stop both on any failure."""
    plan = plan_faults(scenario.publish_seconds, scenario.outage_seconds, scenario.seed)
    stop = threading.Event()
    start = time.monotonic() + 0.5
    faults = threading.Thread(
        target=injector.run, args=(plan, start, stop), name="chaos-faults", daemon=True
    )
    faults.start()
    try:
        publisher.run(start, stop)
        faults.join(max(plan[-1].at - (time.monotonic() - start), 0) + FAULTS_GRACE)
        if faults.is_alive():
            injector.errors.append("the fault schedule did not finish in time")
    finally:
        stop.set()
        faults.join(FAULTS_GRACE)


def _settle_and_count(scenario: Scenario, run: _Run) -> tuple[Figures, Observation]:
    """Wait for the system to settle (or the deadline), then count; also returns what the
    database held, for the explanations."""
    publisher, injector, database = run.publisher, run.injector, run.database
    attempted = frozenset(publisher.first_published)
    last_fault_end = injector.last_fault_end or publisher.finished_at
    deadline = (
        max(last_fault_end, publisher.finished_at)
        + scenario.redelivery_bound
        + scenario.settle_margin
    )
    settle_seconds = wait_settled(database, attempted, deadline)
    observation = None
    for _ in range(10):  # the database answers by now; a last hiccup gets a few more tries
        try:
            observation = database.observe(run.workload, attempted)
            break
        except psycopg.OperationalError:
            time.sleep(1)
    if observation is None:
        observation = database.observe(run.workload, attempted)
    facts = RunFacts(
        attempted=attempted,
        first_published=publisher.first_published,
        messages=publisher.messages,
        republished=publisher.messages - len(attempted),
        publish_retries=publisher.retries,
        publish_failures=len(publisher.failures),
        worker_starts=run.supervisor.worker_starts,
        beat_starts=run.supervisor.beat_starts,
        last_fault_end=last_fault_end,
        bound=scenario.redelivery_bound,
        settle_seconds=settle_seconds,
    )
    return count(observation, run.mailbox.arrivals(), facts), observation


def _explain_lost(run: _Run, observation: Observation) -> dict[str, str]:
    """Each lost command, when it was published and what the broker can tell about it."""
    lost = frozenset(run.publisher.first_published) - observation.stored
    explained = run.broker.explain_lost(set(lost)) if lost else {}
    published, zero = run.publisher.first_published, run.publisher.started_at
    return {
        command_id: f"first published at {published[command_id] - zero:.1f} s; "
        + explained.get(command_id, "no trace on this broker")
        for command_id in sorted(lost)
    }


def _explain_emails(run: _Run, observation: Observation) -> dict[str, str]:
    """Each email not delivered exactly once, with its delivery record and outbox row."""
    problems = email_problems(observation, run.mailbox.arrivals())
    owed = {m: tx for m, tx in observation.owed_emails.items() if m in problems}
    fates = email_fates(run.database, owed)
    return {m: f"{problem}; {fates.get(m, 'no record')}" for m, problem in sorted(problems.items())}
