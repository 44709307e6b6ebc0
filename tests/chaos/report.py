"""The figures and the fault schedule as Markdown tables, ready to paste into the README."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tests.chaos.figures import Figures
from tests.chaos.scenario import Report, Scenario

FIGURE_ROWS: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("commands attempted (distinct ids)", lambda f: f"{f.attempted:,}"),
    ("messages published (second copies)", lambda f: f"{f.messages:,} ({f.republished:,})"),
    ("applied exactly once", lambda f: f"{f.applied_once:,}"),
    ("**lost**", lambda f: f"**{f.lost}**"),
    ("**duplicated**", lambda f: f"**{f.duplicated}**"),
    ("**balance diffs**", lambda f: f"**{f.balance_diffs}**"),
    ("**ledger ≠ balance**", lambda f: f"**{f.ledger_not_balance}**"),
    ("rejected", lambda f: str(f.rejected)),
    ("emails owed", lambda f: f"{f.emails_owed:,}"),
    ("emails delivered", lambda f: f"{f.emails_delivered:,}"),
    ("**emails missing**", lambda f: f"**{f.emails_missing}**"),
    ("**emails duplicated**", lambda f: f"**{f.emails_duplicated}**"),
    ("emails nobody owed", lambda f: str(f.emails_unexpected)),
    ("applied later than the bound", lambda f: f"{f.applied_late} (bound {f.bound:g} s)"),
    ("longest wait, published → applied", lambda f: f"{f.longest_wait:.1f} s"),
    ("last fault → last command applied", lambda f: f"{f.last_fault_to_last_applied:.1f} s"),
    ("last fault → last email delivered", lambda f: f"{f.last_fault_to_last_email:.1f} s"),
    ("outbox rows still owed", lambda f: str(f.outbox_unfinished)),
    ("dead letters", lambda f: str(f.dead_letters)),
    ("publish retries / failures", lambda f: f"{f.publish_retries} / {f.publish_failures}"),
    ("worker / beat starts", lambda f: f"{f.worker_starts} / {f.beat_starts}"),
    ("settled after publishing in", lambda f: f"{f.settle_seconds:.1f} s"),
)


def describe(scenario: Scenario) -> str:
    return (
        f"{scenario.commands:,} commands ({scenario.duplicates:,} published twice) over "
        f"{scenario.customers:,} customers in {scenario.publish_seconds:g} s "
        f"({scenario.rate:.0f} messages/s), PostgreSQL outage {scenario.outage_seconds:g} s, "
        f"LOYALTY_REDELIVERY_BOUND={scenario.redelivery_bound:g}, seed {scenario.seed}"
    )


def figures_table(reports: Sequence[Report]) -> str:
    header = "| figure | " + " | ".join(_broker_title(r) for r in reports) + " |"
    lines = [header, "| --- |" + " ---: |" * len(reports)]
    for label, show in FIGURE_ROWS:
        cells = [show(r.figures) if r.figures is not None else "-" for r in reports]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| run time (setup + publishing + settling + teardown) | "
        + " | ".join(_run_time(r) for r in reports)
        + " |"
    )
    return "\n".join(lines)


def schedule_table(report: Report) -> str:
    """Each fault, seconds after publishing began: planned, hit, over."""
    lines = [
        f"Faults on {_broker_title(report)} (seconds after publishing began):",
        "",
        "| fault | planned | hit | over | what happened |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    zero = report.publishing_started
    for record in report.faults:
        hit = f"{record.started - zero:.1f}" if record.started else "-"
        over = f"{record.ended - zero:.1f}" if record.ended else "-"
        lines.append(
            f"| {record.kind} | {record.planned_at:.1f} | {hit} | {over} | {record.note} |"
        )
    return "\n".join(lines)


def render(reports: Sequence[Report]) -> str:
    """Everything a run prints: the scale, the figures side by side, each schedule, problems."""
    parts = [f"Chaos scenario: {describe(reports[0].scenario)}.", "", figures_table(reports)]
    for report in reports:
        parts += ["", schedule_table(report)]
    for report in reports:
        parts += _details(f"Lost on {_broker_title(report)}", report.lost)
        parts += _details(f"Emails not delivered once on {_broker_title(report)}", report.emails)
    for report in reports:
        problems = report.problems()
        verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
        parts += ["", f"{_broker_title(report)}: {verdict} (logs in {report.log_dir})"]
    return "\n".join(parts)


def _broker_title(report: Report) -> str:
    return {"redis": "Redis", "rabbitmq": "RabbitMQ"}.get(report.broker, report.broker)


def _run_time(report: Report) -> str:
    """Total, then setup + publishing + settling + teardown."""
    phases = report.phases
    settle = report.figures.settle_seconds if report.figures is not None else 0.0
    parts = [phases.get("setup", 0.0), phases.get("publishing", 0.0), settle]
    parts.append(phases.get("teardown", 0.0))
    return f"{report.seconds:.0f} s (" + " + ".join(f"{p:.0f}" for p in parts) + ")"


def _details(title: str, items: dict[str, str], most: int = 10) -> list[str]:
    if not items:
        return []
    lines = ["", f"{title} ({len(items)}):", ""]
    lines += [f"- {key}: {story}" for key, story in list(items.items())[:most]]
    if len(items) > most:
        lines.append(f"- ... and {len(items) - most} more")
    return lines
