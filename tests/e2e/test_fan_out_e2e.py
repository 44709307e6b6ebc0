"""The fan-out end to end: a real command worker and a real side-effect worker, a real SMTP server
and fake Klaviyo, Omnisend and Postscript HTTP servers on 127.0.0.1.

Each shop, customer and email address is unique to its test, so the assertions read only what the
test itself caused.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, update

from models.domain.names import side_effect_queues
from models.domain.side_effects import OutboxEntry
from models.persistence.tables import accounts, dead_letters, outbox, tier_changes, tiers
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from tests.support import environment
from tests.support.factories import adjustment, create_customer
from tests.support.fakes import FakeKlaviyo, FakeOmnisend, FakePostscript, RecordedRequest
from tests.support.smtp import SmtpServer
from workers.app import app
from workers.cli.main import main as cli
from workers.client.publisher import publish_adjustment
from workers.db import Database
from workers.outbound.providers import PROVIDERS
from workers.outbox import publish_committed
from workers.process import ROOT, WorkerProcess

pytestmark = pytest.mark.e2e

SECRET = "e2e-secret-key-for-provider-credentials"
KEYS = {"klaviyo": "pk_e2e_klaviyo", "omnisend": "omni-e2e-key", "postscript": "sk_e2e_ps"}
KLAVIYO_LIMIT_PER_SECOND = 20
MAX_ATTEMPTS = 3


@dataclass
class Stack:
    klaviyo: FakeKlaviyo
    omnisend: FakeOmnisend
    postscript: FakePostscript
    smtp: SmtpServer
    database: Database
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(engine: Engine, worker: WorkerProcess) -> Iterator[Stack]:
    """A side-effect worker on every side-effect queue and beat (the session's worker applies
    commands)."""
    with (
        FakeKlaviyo(api_keys={KEYS["klaviyo"]}) as klaviyo,
        FakeOmnisend(api_keys={KEYS["omnisend"]}) as omnisend,
        FakePostscript(api_keys={KEYS["postscript"]}) as postscript,
        SmtpServer() as smtp,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("LOYALTY_SECRET_KEY", SECRET)
        with redis.Redis.from_url(environment.BROKER_URL) as broker:
            # Messages in-process tests published for rows they rolled back.
            broker.delete(*side_effect_queues(PROVIDERS))
        env = environment.worker_environment(
            LOYALTY_SECRET_KEY=SECRET,
            LOYALTY_KLAVIYO_BASE_URL=klaviyo.base_url,
            LOYALTY_OMNISEND_BASE_URL=omnisend.base_url,
            LOYALTY_POSTSCRIPT_BASE_URL=postscript.base_url,
            LOYALTY_SMTP_HOST=smtp.host,
            LOYALTY_SMTP_PORT=str(smtp.port),
            LOYALTY_KLAVIYO_RATE_LIMIT=f"{KLAVIYO_LIMIT_PER_SECOND}/second",
            LOYALTY_OMNISEND_RATE_LIMIT="20/second",
            LOYALTY_POSTSCRIPT_RATE_LIMIT="15/second",
            LOYALTY_SIDE_EFFECT_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
            LOYALTY_RETRY_BACKOFF_BASE="0.2",
            LOYALTY_OUTBOX_GRACE="1",
            LOYALTY_HTTP_TIMEOUT="3",
        )
        side_effects = WorkerProcess(
            "side-effects",
            ROOT / ".loyalty" / "worker-side-effects.log",
            queues=",".join(side_effect_queues(PROVIDERS)),
            concurrency=4,
            env=env,
            cwd=ROOT,
        ).start()
        # Beat's relay publishes the syncs (after the sync delay) and every retry when due.
        beat = start_beat(env)
        database = Database(environment.DATABASE_URL)
        try:
            from workers.app import app

            side_effects.wait_ready(app)
            yield Stack(klaviyo, omnisend, postscript, smtp, database, env)
        finally:
            beat.terminate()
            beat.wait(10)
            side_effects.stop()
            database.engine.dispose()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def new_shop(*providers: str, tiers_at: dict[str, int] | None = None) -> str:
    shop = f"fan-{uuid.uuid4().hex[:8]}"
    run("shop", "create", shop, "--name", "Tea & Co", "--email-from", "Tea <hi@tea.example>")
    for name, threshold in (tiers_at or {}).items():
        run("tier", "set", shop, name, str(threshold))
    for provider in providers:
        run("integration", "enable", shop, provider, "--api-key", KEYS[provider])
    return shop


def apply_all(commands: list[dict[str, Any]], timeout: float = 60) -> list[dict[str, Any]]:
    pending = [publish_adjustment(command) for command in commands]
    return [result.get(timeout=timeout) for result in pending]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pending_side_effects(stack: Stack, shop: str) -> int:
    with stack.database.engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.shop_id == shop, outbox.c.completed_at.is_(None))
        ).scalar_one()


def settle(stack: Stack, *shops: str, timeout: float = 60) -> None:
    wait_until(
        lambda: all(pending_side_effects(stack, shop) == 0 for shop in shops),
        timeout,
        f"the side effects of {shops}",
    )


def emails_to(stack: Stack, address: str) -> list[Any]:
    return [m for m in stack.smtp.messages if m["To"] == address]


def balance(record: dict[str, Any] | None, field: str = "properties") -> Any:
    """The loyalty balance a provider holds for a profile, contact or subscriber."""
    assert record is not None, "the provider has no such record"
    return record[field]["loyalty_points_balance"]


def test_adjustments_fan_out_to_tiers_emails_and_each_enabled_provider(stack: Stack) -> None:
    shop = new_shop("klaviyo", "omnisend", "postscript", tiers_at={"Silver": 100, "Gold": 1000})
    quiet_shop = new_shop()
    ada, bob = (f"{name}-{shop}@example.com" for name in ("ada", "bob"))
    dee = f"dee-{quiet_shop}@example.com"
    run("customer", "upsert", shop, "ada", "--email", ada, "--phone", "+15555550101", "--wait")
    run("customer", "upsert", shop, "bob", "--email", bob, "--wait")
    run("customer", "upsert", shop, "cy", "--phone", "+15555550103", "--wait")
    run("customer", "upsert", quiet_shop, "dee", "--email", dee, "--wait")
    stack.omnisend.add_contact(ada)
    stack.postscript.add_subscriber(phone="+15555550101", email=ada)
    stack.postscript.add_subscriber(phone="+15555550103")

    ada_steps = [
        adjustment(shop, "ada", adjustment=150, note="first order"),
        adjustment(shop, "ada", adjustment=900, note="big order"),
        adjustment(shop, "ada", adjustment=-50, note="refund"),
    ]
    results = [apply_all([step])[0] for step in ada_steps]  # in this order
    results += apply_all(
        [
            adjustment(shop, "bob", adjustment=20, send_email=False),
            adjustment(shop, "cy", adjustment=30),
            adjustment(quiet_shop, "dee", adjustment=40),
        ]
    )
    assert [r["status"] for r in results] == ["applied"] * 6
    ada_transactions = [r["transaction_id"] for r in results[:3]]
    settle(stack, shop, quiet_shop)

    # Emails: increases with send_email and an address, once each.
    assert len(emails_to(stack, ada)) == 2
    assert emails_to(stack, bob) == []
    assert len(emails_to(stack, dee)) == 1
    assert len({m["Message-ID"] for m in emails_to(stack, ada)}) == 2

    # Tiers: ada ends in Gold, every change recorded as an unbroken chain.
    with stack.database.engine.connect() as connection:
        tier_of_ada = connection.execute(
            select(tiers.c.name)
            .select_from(accounts.join(tiers, tiers.c.id == accounts.c.tier_id))
            .where(accounts.c.shop_id == shop, accounts.c.customer_id == "ada")
        ).scalar_one()
        chain = connection.execute(
            select(tier_changes.c.from_tier, tier_changes.c.to_tier)
            .where(tier_changes.c.shop_id == shop)
            .order_by(tier_changes.c.id)
        ).all()
    assert tier_of_ada == "Gold"
    assert chain[0].from_tier is None
    assert chain[-1].to_tier == "Gold"
    assert all(a.to_tier == b.from_tier for a, b in itertools.pairwise(chain)), chain

    # Klaviyo: absolute state for everyone in the enabled shop, one event per adjustment.
    final = results[2]["account"]
    expected = {
        "loyalty_points_balance": final["points"]["balance"],
        "loyalty_lifetime_points": final["lifetime_points"],
        "loyalty_revision": final["revision"],
    }
    assert expected["loyalty_points_balance"] == 1000
    ada_profile = stack.klaviyo.profile("ada")
    assert ada_profile is not None
    assert ada_profile["properties"].items() >= expected.items()
    assert ada_profile["properties"]["loyalty_vip_tier"] == "Gold"
    assert sorted(e["unique_id"] for e in stack.klaviyo.events_for("ada")) == sorted(
        ada_transactions
    )
    assert balance(stack.klaviyo.profile(bob)) == 20
    assert balance(stack.klaviyo.profile("cy")) == 30
    assert stack.klaviyo.profile(dee) is None  # its shop enabled nothing

    # Omnisend: only existing contacts are updated; nobody is created.
    contact = stack.omnisend.contact(ada)
    assert contact is not None
    assert contact["customProperties"].items() >= expected.items()
    assert stack.omnisend.contact(bob) is None
    assert len([e for e in stack.omnisend.events if e["contact"]["email"] == ada]) == 3

    # Postscript: existing subscribers only; events keyed by transaction id.
    subscriber = stack.postscript.subscriber("+15555550101")
    assert subscriber is not None
    assert subscriber["properties"].items() >= expected.items()
    assert balance(stack.postscript.subscriber("+15555550103")) == 30
    assert stack.postscript.subscriber(bob) is None
    external_ids = {e["external_id"] for e in stack.postscript.events}
    assert set(ada_transactions) <= external_ids


def test_a_reversal_and_a_changed_email_reach_the_providers(stack: Stack) -> None:
    shop = new_shop("klaviyo", tiers_at={"Silver": 250})
    first, second = (f"{name}-{shop}@example.com" for name in ("eve", "eve.new"))
    run("customer", "upsert", shop, "eve", "--email", first, "--wait")
    [order] = apply_all([adjustment(shop, "eve", adjustment=300, send_email=False)])

    reversal = json.loads(
        run("reverse", shop, "eve", order["transaction_id"], "--points", "100", "--wait")
    )
    settle(stack, shop)

    assert reversal["data"]["attributes"]["remaining_reversible"] == 200
    profile = stack.klaviyo.profile("eve")
    assert balance(profile) == 200
    assert profile is not None
    assert profile["properties"]["loyalty_lifetime_points"] == 200
    assert profile["properties"].get("loyalty_vip_tier") is None  # 300 reached Silver, 200 not
    assert sorted(e["unique_id"] for e in stack.klaviyo.events_for("eve")) == sorted(
        [order["transaction_id"], reversal["transaction_id"]]
    )
    assert emails_to(stack, first) == []

    run("customer", "upsert", shop, "eve", "--email", second, "--wait")
    settle(stack, shop)

    changed = stack.klaviyo.profile("eve")
    assert changed is not None
    assert changed["email"] == second
    assert len(stack.klaviyo.events_for("eve")) == 2  # a profile change is no points event


def test_expiry_reminds_once_then_expires_and_the_providers_hear_of_both(stack: Stack) -> None:
    shop = new_shop("klaviyo", "postscript")
    run("shop", "update", shop, "--points-expire-after-days", "30", "--expiry-reminder-days", "7")
    email = f"fay-{shop}@example.com"
    run("customer", "upsert", shop, "fay", "--email", email, "--phone", "+15555550131", "--wait")
    subscriber = stack.postscript.add_subscriber(phone="+15555550131")
    [earned] = apply_all([adjustment(shop, "fay", adjustment=500, send_email=False)])
    expires_at = earned["account"]["points_expiration"]["expiration_date"]
    moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    settle(stack, shop)

    for days_before in (5, 4):  # the second run finds the reminder recorded
        run("expiry", "run", shop, "--as-of", (moment - timedelta(days=days_before)).isoformat())
        settle(stack, shop)

    assert len(emails_to(stack, email)) == 1
    assert "500 points" in str(emails_to(stack, email)[0]["Subject"])
    reminded = stack.klaviyo.profile("fay")
    assert reminded is not None
    assert reminded["properties"]["loyalty_points_expiring"] == 500
    assert reminded["properties"]["loyalty_points_expiration_date"] == expires_at.replace(
        ".000Z", "Z"
    )
    names = [e["metric"] for e in stack.klaviyo.events_for("fay")]
    assert names == ["Loyalty Points Adjusted", "Loyalty Points Expiring Soon"]
    postscript_types = [
        e["type"] for e in stack.postscript.events if e["resolved_subscriber_id"] == subscriber
    ]
    assert postscript_types[-1] == "LoyaltyPointsExpiringSoon"

    run("expiry", "run", shop, "--as-of", moment.isoformat())
    settle(stack, shop)

    expired = stack.klaviyo.profile("fay")
    assert expired is not None
    assert balance(expired) == 0
    assert expired["properties"]["loyalty_points_expiring"] == 0
    assert [e["metric"] for e in stack.klaviyo.events_for("fay")][-1] == "Loyalty Points Expired"
    assert balance(stack.postscript.subscriber("+15555550131")) == 0
    assert len(emails_to(stack, email)) == 1


def test_a_burst_to_one_customer_collapses_into_few_profile_pushes(stack: Stack) -> None:
    shop = new_shop("klaviyo", "omnisend")
    email = f"Hot-{shop}@Example.com"  # Omnisend holds it with this case, and so do we
    run("customer", "upsert", shop, "hot", "--email", email, "--wait")
    stack.omnisend.add_contact(email)
    earlier = len(stack.klaviyo.requests)
    omnisend_writes = stack.omnisend.contact_writes

    apply_all([adjustment(shop, "hot", adjustment=1, send_email=False) for _ in range(200)])
    settle(stack, shop, timeout=120)

    pushes = [
        r
        for r in stack.klaviyo.requests_to("POST", "/api/profile-import")
        if r.status in (200, 201) and r.json["data"]["attributes"].get("external_id") == "hot"
    ]
    profile = stack.klaviyo.profile("hot")
    assert profile is not None
    assert profile["properties"]["loyalty_points_balance"] == 200
    assert len(stack.klaviyo.events_for("hot")) == 200
    assert len(pushes) <= 20, f"{len(pushes)} profile pushes for 200 adjustments"
    assert_within_rate_limit(stack.klaviyo.requests[earlier:], KLAVIYO_LIMIT_PER_SECOND)
    assert balance(stack.omnisend.contact(email), "customProperties") == 200
    writes = stack.omnisend.contact_writes - omnisend_writes
    assert 1 <= writes <= 20, f"{writes} Omnisend contact writes for 200 adjustments"
    assert len([e for e in stack.omnisend.events if e["contact"]["email"] == email]) == 200


def assert_within_rate_limit(requests: list[RecordedRequest], per_second: int) -> None:
    """The limiter grants slots as requests are about to leave; the fake sees them arrive after
    the client built and sent them, each later than its slot by a different amount (up to a few
    hundred milliseconds when a dozen processes share two cores). So the average over the burst
    must stay within the limit, and no one-second window may hold much more than it: an
    unthrottled client would send the whole burst at over 100 calls a second."""
    times = sorted(r.at for r in requests)
    average = (len(times) - per_second) / (times[-1] - times[0])
    busiest = max(
        (sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)), default=0
    )
    assert average <= per_second * 1.05, f"{average:.1f} calls per second on average"
    assert busiest <= per_second * 1.5, f"{busiest} calls within one second"


def test_provider_faults_are_retried_honouring_retry_after(stack: Stack) -> None:
    shop = new_shop("klaviyo", "omnisend", "postscript")
    email = f"ada-{shop}@example.com"
    run("customer", "upsert", shop, "ada", "--email", email, "--phone", "+15555550111", "--wait")
    stack.omnisend.add_contact(email)
    stack.postscript.add_subscriber(phone="+15555550111")
    settle(stack, shop)  # the syncs the new email owes, before any fault
    before = {name: len(fake.requests) for name, fake in fakes(stack).items()}
    stack.klaviyo.fail_next(2, status=429, retry_after=2)
    stack.omnisend.fail_next(1, status=429, retry_after=1)
    stack.omnisend.fail_next(1, status=503)
    stack.postscript.fail_next(1, status=429)
    stack.postscript.fail_next(1, status=502)

    apply_all([adjustment(shop, "ada", adjustment=75, send_email=False)])
    settle(stack, shop, timeout=90)

    klaviyo_calls = stack.klaviyo.requests[before["klaviyo"] :]
    assert [r.status for r in klaviyo_calls[:2]] == [429, 429]
    gaps = [b.at - a.at for a, b in itertools.pairwise(klaviyo_calls[:3])]
    assert all(gap >= 2 for gap in gaps), gaps
    assert balance(stack.klaviyo.profile("ada")) == 75
    assert balance(stack.omnisend.contact(email), "customProperties") == 75
    assert balance(stack.postscript.subscriber("+15555550111")) == 75
    omnisend_calls = stack.omnisend.requests[before["omnisend"] :]
    assert omnisend_calls[1].at - omnisend_calls[0].at >= 1
    with stack.database.engine.connect() as connection:
        outcomes = connection.execute(
            select(outbox.c.task_name, outbox.c.attempts, outbox.c.outcome).where(
                outbox.c.shop_id == shop,
                outbox.c.task_name.like("loyalty.sync_%"),
                outbox.c.transaction_id.is_not(None),
            )
        ).all()
    assert {row.task_name: row.attempts for row in outcomes} == {
        "loyalty.sync_klaviyo": 2,
        "loyalty.sync_omnisend": 2,
        "loyalty.sync_postscript": 2,
    }
    assert all(row.outcome == "synced" for row in outcomes)


def fakes(stack: Stack) -> dict[str, Any]:
    return {"klaviyo": stack.klaviyo, "omnisend": stack.omnisend, "postscript": stack.postscript}


def test_a_failing_provider_ends_in_dead_letters_that_replay_delivers(stack: Stack) -> None:
    shop = new_shop("omnisend", "postscript")
    email = f"ada-{shop}@example.com"
    run("customer", "upsert", shop, "ada", "--email", email, "--phone", "+15555550121", "--wait")
    stack.omnisend.add_contact(email)
    stack.postscript.add_subscriber(phone="+15555550121")
    settle(stack, shop)  # the syncs the new email owes, before any fault
    stack.omnisend.fail_always(503)  # transient, for longer than the attempts allow
    stack.postscript.fail_always(401)  # permanent: no retry at all
    try:
        apply_all([adjustment(shop, "ada", adjustment=60, send_email=False)])
        settle(stack, shop, timeout=60)
    finally:
        stack.omnisend.recover()
        stack.postscript.recover()

    with stack.database.engine.connect() as connection:
        letters = connection.execute(
            select(dead_letters).where(dead_letters.c.shop_id == shop).order_by(dead_letters.c.id)
        ).all()
    assert {(letter.task_name, letter.attempts) for letter in letters} == {
        ("loyalty.sync_omnisend", MAX_ATTEMPTS),
        ("loyalty.sync_postscript", 1),
    }
    listing = run("dead-letters", "list")
    assert all(f"#{letter.id}" in listing for letter in letters)
    assert KEYS["omnisend"] not in listing

    run("dead-letters", "replay", *(str(letter.id) for letter in letters))
    settle(stack, shop)

    assert balance(stack.omnisend.contact(email), "customProperties") == 60
    assert balance(stack.postscript.subscriber("+15555550121")) == 60
    assert f"#{letters[0].id}" not in run("dead-letters", "list")


def test_the_relay_delivers_what_was_committed_but_never_published(stack: Stack) -> None:
    shop = new_shop("klaviyo")
    emails = [f"c{i}-{shop}@example.com" for i in range(10)]
    for i, email in enumerate(emails):
        create_customer(stack.database.unit_of_work(), shop, f"c{i}", email=email)
    with stack.database.engine.begin() as connection:  # rows other tests left pending: not ours
        connection.execute(
            update(outbox)
            .where(outbox.c.shop_id != shop, outbox.c.completed_at.is_(None))
            .values(completed_at=datetime.now(UTC), outcome="set aside by the relay test")
        )
    # Committed as a worker would, but the worker "died" before publishing anything.
    owed: list[OutboxEntry] = []
    for i in range(10):
        uow = UnitOfWork(stack.database.sessions, owed.extend)
        command_engine.adjust_points(uow, adjustment(shop, f"c{i}", adjustment=10 + i))
    # some were published, and will now be published a second time by hand
    publish_committed(app, owed[:5])
    publish_committed(app, owed[:5])

    settle(stack, shop, timeout=60)  # the stack's beat runs the relay every second

    for i, email in enumerate(emails):
        assert len(emails_to(stack, email)) == 1, email
        profile = stack.klaviyo.profile(f"c{i}")
        assert profile is not None
        assert profile["properties"]["loyalty_points_balance"] == 10 + i
        assert len(stack.klaviyo.events_for(f"c{i}")) == 1


def start_beat(env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (ROOT / ".loyalty" / "beat.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", "info",
             "-s", str(ROOT / ".loyalty" / "test-beat-schedule")],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
