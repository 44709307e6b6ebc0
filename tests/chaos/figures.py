"""The figures of a run: what became of every command and email, from the database (``books``)
and the SMTP server (``mailbox``).

Nothing here trusts the workers' own reports: a command counts as applied when the database holds
its stored result and its ledger entry, an email as delivered when the SMTP server received a
message with its Message-ID.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tests.chaos.books import Observation
from tests.chaos.mailbox import Arrival

MUST_BE_ZERO = (
    "lost",
    "duplicated",
    "balance_diffs",
    "ledger_not_balance",
    "emails_missing",
    "emails_duplicated",
    "applied_late",
    "rejected",
    "emails_unexpected",
    "outbox_unfinished",
    "publish_failures",
)


@dataclass(frozen=True)
class Figures:
    """One run's outcome; every figure named in ``MUST_BE_ZERO`` must be 0 for it to pass."""

    attempted: int
    """Distinct command ids published."""
    messages: int
    republished: int
    applied_once: int
    lost: int
    duplicated: int
    balance_diffs: int
    ledger_not_balance: int
    rejected: int
    emails_owed: int
    emails_delivered: int
    emails_missing: int
    emails_duplicated: int
    emails_unexpected: int
    applied_late: int
    """Commands applied more than the bound after the last fault (or after their publish)."""
    bound: float
    longest_wait: float
    """The most seconds any command waited from its first publish to being applied."""
    last_fault_to_last_applied: float
    last_fault_to_last_email: float
    outbox_unfinished: int
    dead_letters: int
    publish_retries: int
    publish_failures: int
    worker_starts: int
    beat_starts: int
    settle_seconds: float

    def problems(self) -> list[str]:
        """Every figure that must be zero and is not, as ``name N``."""
        return [f"{name} {getattr(self, name)}" for name in MUST_BE_ZERO if getattr(self, name)]


@dataclass(frozen=True)
class RunFacts:
    """What the harness itself knows about the run, as opposed to what the database says."""

    attempted: frozenset[str]
    first_published: dict[str, float]
    messages: int
    republished: int
    publish_retries: int
    publish_failures: int
    worker_starts: int
    beat_starts: int
    last_fault_end: float
    bound: float
    settle_seconds: float


def count(observation: Observation, arrivals: list[Arrival], facts: RunFacts) -> Figures:
    received = Counter(arrival.message_id for arrival in arrivals)
    owed = set(observation.owed_emails)
    delivered = owed & set(received)
    applied_at = observation.applied_at
    late = [
        command_id
        for command_id, at in applied_at.items()
        if at > max(facts.last_fault_end, facts.first_published[command_id]) + facts.bound
    ]
    last_email = max((a.at for a in arrivals if a.message_id in owed), default=0.0)
    return Figures(
        attempted=len(facts.attempted),
        messages=facts.messages,
        republished=facts.republished,
        applied_once=observation.applied_once,
        lost=len(facts.attempted - observation.stored),
        duplicated=observation.duplicated,
        balance_diffs=observation.balance_diffs,
        ledger_not_balance=observation.ledger_not_balance,
        rejected=len(observation.stored) - len(applied_at),
        emails_owed=len(owed),
        emails_delivered=len(delivered),
        emails_missing=len(owed - delivered),
        emails_duplicated=sum(1 for times in received.values() if times > 1),
        emails_unexpected=len(set(received) - owed),
        applied_late=len(late),
        bound=facts.bound,
        longest_wait=max(
            (at - facts.first_published[command_id] for command_id, at in applied_at.items()),
            default=0.0,
        ),
        last_fault_to_last_applied=max(applied_at.values(), default=0.0) - facts.last_fault_end,
        last_fault_to_last_email=last_email - facts.last_fault_end,
        outbox_unfinished=observation.outbox_unfinished,
        dead_letters=observation.dead_letters,
        publish_retries=facts.publish_retries,
        publish_failures=facts.publish_failures,
        worker_starts=facts.worker_starts,
        beat_starts=facts.beat_starts,
        settle_seconds=facts.settle_seconds,
    )


def email_problems(observation: Observation, arrivals: list[Arrival]) -> dict[str, str]:
    """Message-ID -> "missing" or "received N times", for every owed email that is not there
    exactly once and every email nobody owed."""
    received = Counter(arrival.message_id for arrival in arrivals)
    problems = {m: "missing" for m in observation.owed_emails if m not in received}
    problems.update({m: f"received {n} times" for m, n in received.items() if n > 1})
    problems.update({m: "nobody owed it" for m in received if m not in observation.owed_emails})
    return problems
