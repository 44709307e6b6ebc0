"""Points expiry against PostgreSQL: the policy, lots made by commands, the expiry run through the
CLI (``--as-of`` is its clock) and the beat task, reminders, and two runs at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, select

import models.services.command_engine
from models.domain.names import SEND_POINTS_EXPIRING_EMAIL, sync_task_name
from models.persistence.tables import expiry_reminders, outbox, point_lots
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from models.services.expiry import run_expiry
from tasks.emails import send_points_expiring_email
from tasks.expiry import expire_points
from tasks.live_commands import adjust_points
from tests.support.factories import (
    account_row,
    adjustment,
    create_customer,
    create_shop,
    ledger_rows,
    reversal,
)
from tests.support.smtp import SmtpServer
from tests.tasks.test_concurrency import in_threads
from workers.cli.main import main
from workers.db import Database

DAY_1 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def midnight(day: datetime, days_later: int) -> datetime:
    """The lot expiry of something applied on ``day`` with a policy of ``days_later`` days."""
    return datetime.combine((day + timedelta(days=days_later + 1)).date(), datetime.min.time(), UTC)


class Clock:
    """The command engine's clock, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = DAY_1
        monkeypatch.setattr(models.services.command_engine, "utc_now", lambda: self.now)

    def days_later(self, days: int) -> None:
        self.now += timedelta(days=days)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def new_shop(uow: UnitOfWork, *customers: str, days: int | None = 30, **flags: str) -> str:
    shop_id = f"exp-{uuid.uuid4().hex[:8]}"
    create_shop(uow, shop_id)
    for customer in customers:
        create_customer(uow, shop_id, customer, email=f"{customer}@example.com")
    if days is not None:
        options = [f"--{name.replace('_', '-')}={value}" for name, value in flags.items()]
        cli("shop", "update", shop_id, "--points-expire-after-days", str(days), *options)
    return shop_id


def lots_of(connection: Connection, shop_id: str) -> list[tuple[datetime, int]]:
    rows = connection.execute(
        select(point_lots.c.expires_at, point_lots.c.points)
        .where(point_lots.c.shop_id == shop_id)
        .order_by(point_lots.c.expires_at)
    )
    return [(row.expires_at, row.points) for row in rows]


def owed(connection: Connection, shop_id: str, transaction_id: Any) -> list[str]:
    rows = connection.execute(
        select(outbox.c.task_name).where(
            outbox.c.shop_id == shop_id, outbox.c.transaction_id == transaction_id
        )
    )
    return sorted(rows.scalars())


class TestPolicy:
    def test_turning_expiry_on_makes_each_balance_one_lot_and_off_drops_them(
        self, uow: UnitOfWork, connection: Connection
    ) -> None:
        shop = new_shop(uow, "ada", "bob", days=None)
        adjust_points(adjustment(shop, "ada", adjustment=300))

        shown = cli("shop", "update", shop, "--points-expire-after-days", "90")
        lots = lots_of(connection, shop)
        off = cli("shop", "update", shop, "--points-expire-after-days", "0")

        assert "points expire after 90 days, reminder 14 days before" in shown
        [(expires_at, points)] = lots
        assert points == 300
        assert timedelta(days=90) < expires_at - datetime.now(UTC) <= timedelta(days=91)
        assert "points never expire" in off
        assert lots_of(connection, shop) == []

    def test_results_and_the_account_carry_the_next_expiration(
        self, uow: UnitOfWork, clock: Clock
    ) -> None:
        shop = new_shop(uow, "ada")
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=100))
        clock.days_later(3)

        result = command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=50))
        shown = cli("account", "show", shop, "ada", "--json")

        assert result["account"]["points_expiration"] == {
            "expiration_date": f"{midnight(DAY_1, 30).date()}T00:00:00.000Z",
            "expiring_points_amount": 100,
        }
        assert '"expiring_points_amount": 100' in shown
        assert '"expired": 0' in shown

    def test_a_shop_without_a_policy_keeps_no_lots(
        self, uow: UnitOfWork, connection: Connection
    ) -> None:
        shop = new_shop(uow, "ada", days=None)

        result = adjust_points(adjustment(shop, "ada", adjustment=100))

        assert result["account"]["points_expiration"] is None
        assert lots_of(connection, shop) == []

    def test_a_day_outside_the_range_is_refused_naming_the_option(self, uow: UnitOfWork) -> None:
        shop = new_shop(uow, days=None)

        result = CliRunner().invoke(
            main, ["shop", "update", shop, "--points-expire-after-days", "-1"]
        )

        assert result.exit_code == 2
        assert "--points-expire-after-days" in result.output


class TestLots:
    def test_decreases_and_claw_backs_take_the_oldest_lots_first(
        self, uow: UnitOfWork, connection: Connection, clock: Clock
    ) -> None:
        shop = new_shop(uow, "ada")
        first = command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=100))
        clock.days_later(10)
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=200))
        clock.days_later(10)
        redeemed = command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=-150))
        command_engine.reverse_adjustment(
            uow, reversal(shop, "ada", redeemed["transaction_id"], points=50)
        )
        command_engine.reverse_adjustment(
            uow, reversal(shop, "ada", first["transaction_id"], points=100)
        )

        # -150 emptied the first lot and took 50 of the second; the credit back of 50 is a
        # new lot of today; the claw-back of 100 took from the second lot again.
        assert lots_of(connection, shop) == [
            (midnight(DAY_1, 40), 50),
            (midnight(DAY_1, 50), 50),
        ]
        assert account_row(connection, shop, "ada").balance == 100


class TestExpiryRun:
    def test_as_of_expires_what_is_due_across_lots_and_shops(
        self, uow: UnitOfWork, connection: Connection, clock: Clock
    ) -> None:
        monthly = new_shop(uow, "ada", "bob", days=30)
        weekly = new_shop(uow, "cy", days=7)
        never = new_shop(uow, "dee", days=None)
        with uow:
            uow.integrations.enable(monthly, "klaviyo", "token", "…1234", datetime.now(UTC))
            uow.commit()
        for shop, customer in ((monthly, "ada"), (monthly, "bob"), (weekly, "cy"), (never, "dee")):
            command_engine.adjust_points(uow, adjustment(shop, customer, adjustment=100))
        clock.days_later(5)
        command_engine.adjust_points(uow, adjustment(monthly, "ada", adjustment=40))
        before = account_row(connection, monthly, "ada")
        as_of = midnight(DAY_1, 30).isoformat()

        report = cli("expiry", "run", "--as-of", as_of)
        again = run_expiry(lambda: uow, as_of=datetime.fromisoformat(as_of))

        assert report.startswith("as of 2026-04-01T00:00:00+00:00, every shop with a policy:")
        assert (again.points, again.accounts, again.reminders) == (0, 0, 0)
        ada = account_row(connection, monthly, "ada")
        assert (ada.balance, ada.expired, ada.lifetime) == (40, 100, before.lifetime)
        assert ada.revision == before.revision + 1
        assert ada.balance == ada.earned - ada.redeemed + ada.adjusted - ada.expired
        assert account_row(connection, weekly, "cy").balance == 0
        assert account_row(connection, never, "dee").balance == 100
        [entry] = [e for e in ledger_rows(connection, monthly) if e.kind == "expire"][:1]
        assert (entry.requested, entry.applied, entry.source) == (-100, -100, "expiry")
        assert owed(connection, monthly, entry.transaction_id) == [sync_task_name("klaviyo")]
        assert lots_of(connection, monthly) == [(midnight(DAY_1, 35), 40)]

    def test_one_shop_alone(self, uow: UnitOfWork, connection: Connection, clock: Clock) -> None:
        first, second = new_shop(uow, "ada"), new_shop(uow, "bob")
        for shop, customer in ((first, "ada"), (second, "bob")):
            command_engine.adjust_points(uow, adjustment(shop, customer, adjustment=10))

        cli("expiry", "run", first, "--as-of", midnight(DAY_1, 30).isoformat())

        assert account_row(connection, first, "ada").balance == 0
        assert account_row(connection, second, "bob").balance == 10

    def test_a_reminder_is_recorded_once_with_its_email_and_syncs(
        self, uow: UnitOfWork, connection: Connection, clock: Clock
    ) -> None:
        shop = new_shop(uow, "ada", days=30, expiry_reminder_days=7)
        create_customer(uow, shop, "noemail")
        with uow:
            uow.integrations.enable(shop, "klaviyo", "token", "…1234", datetime.now(UTC))
            uow.commit()
        for customer in ("ada", "noemail"):
            command_engine.adjust_points(uow, adjustment(shop, customer, adjustment=80))
        expires_at = midnight(DAY_1, 30)
        too_early = expires_at - timedelta(days=7, seconds=1)

        run_expiry(lambda: uow, as_of=too_early)
        early = connection.execute(select(expiry_reminders)).all()
        first = run_expiry(lambda: uow, as_of=expires_at - timedelta(days=3))
        second = run_expiry(lambda: uow, as_of=expires_at - timedelta(days=1))

        assert [r for r in early if r.shop_id == shop] == []
        assert (first.reminders, second.reminders) == (2, 0)
        reminders = connection.execute(
            select(expiry_reminders).where(expiry_reminders.c.shop_id == shop)
        ).all()
        assert {(r.expires_at, r.points) for r in reminders} == {(expires_at, 80)}
        by_customer = {
            account_row(connection, shop, "ada").id: "ada",
            account_row(connection, shop, "noemail").id: "noemail",
        }
        tasks = {by_customer[r.account_id]: owed(connection, shop, r.id) for r in reminders}
        assert tasks == {
            "ada": sorted([SEND_POINTS_EXPIRING_EMAIL, sync_task_name("klaviyo")]),
            "noemail": [sync_task_name("klaviyo")],
        }

    def test_the_beat_task_runs_as_of_now(
        self, uow: UnitOfWork, connection: Connection, clock: Clock
    ) -> None:
        shop = new_shop(uow, "ada", days=1)
        clock.now = datetime.now(UTC) - timedelta(days=3)
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=10))

        outcome = expire_points()

        assert outcome["complete"] is True
        assert outcome["accounts"] >= 1
        assert account_row(connection, shop, "ada").balance == 0

    def test_an_as_of_that_is_not_a_moment_is_refused(self) -> None:
        result = CliRunner().invoke(main, ["expiry", "run", "--as-of", "next tuesday"])

        assert result.exit_code == 2
        assert "not an ISO 8601 moment" in result.output


class TestReminderEmail:
    @pytest.fixture
    def smtp(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
        with SmtpServer() as server:
            monkeypatch.setenv("LOYALTY_SMTP_HOST", server.host)
            monkeypatch.setenv("LOYALTY_SMTP_PORT", str(server.port))
            yield server

    def test_the_reminder_email_names_the_points_and_the_last_day(
        self, uow: UnitOfWork, connection: Connection, clock: Clock, smtp: SmtpServer
    ) -> None:
        shop = new_shop(uow, "ada", days=30)
        clock.now = datetime.now(UTC)
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=1200))
        expires_at = midnight(clock.now, 30)
        run_expiry(lambda: uow, as_of=expires_at - timedelta(days=2), shop_id=shop)
        [row] = connection.execute(
            select(outbox).where(
                outbox.c.shop_id == shop, outbox.c.task_name == SEND_POINTS_EXPIRING_EMAIL
            )
        ).all()

        assert send_points_expiring_email(row.id) == "sent"
        assert send_points_expiring_email(row.id) == "already done"
        (message,) = smtp.wait_for(1)
        last_day = (expires_at - timedelta(days=1)).date()
        assert message["To"] == "ada@example.com"
        assert f"1,200 points at Shop {shop} expire after {last_day:%B} {last_day.day}" in str(
            message["Subject"]
        )
        assert message["Message-ID"] == f"<expiring.{row.transaction_id}@loyalty.invalid>"

    def test_no_reminder_email_once_the_points_are_spent(
        self, uow: UnitOfWork, connection: Connection, clock: Clock, smtp: SmtpServer
    ) -> None:
        shop = new_shop(uow, "ada", days=30)
        clock.now = datetime.now(UTC)
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=100))
        run_expiry(lambda: uow, as_of=midnight(clock.now, 30) - timedelta(days=2), shop_id=shop)
        command_engine.adjust_points(uow, adjustment(shop, "ada", adjustment=-100))
        [row] = connection.execute(
            select(outbox).where(
                outbox.c.shop_id == shop, outbox.c.task_name == SEND_POINTS_EXPIRING_EMAIL
            )
        ).all()

        assert send_points_expiring_email(row.id) == "skipped: nothing left to say"
        assert smtp.messages == []


def test_two_runs_at_once_never_expire_a_lot_twice(committed: Database) -> None:
    shop = f"race-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop)
    customers = [f"c{i}" for i in range(30)]
    with committed.unit_of_work() as uow:
        uow.shops.update(shop, {"points_expire_after_days": 30})
        uow.commit()
    for customer in customers:
        create_customer(committed.unit_of_work(), shop, customer)
        command_engine.adjust_points(
            committed.unit_of_work(), adjustment(shop, customer, adjustment=10)
        )
    as_of = datetime.now(UTC) + timedelta(days=32)

    reports = in_threads(
        lambda _: run_expiry(committed.unit_of_work, as_of=as_of, shop_id=shop, page_size=7)
    )

    assert sum(report.points for report in reports) == 300
    assert sum(report.accounts for report in reports) == 30
    with committed.engine.connect() as connection:
        entries = ledger_rows(connection, shop)
        balances = [account_row(connection, shop, c).balance for c in customers]
    assert len([e for e in entries if e.kind == "expire"]) == 30
    assert balances == [0] * 30
