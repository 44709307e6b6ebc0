"""The points-earned email in-process, against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, select

import models.services.emails
from models.domain.names import SEND_POINTS_EARNED_EMAIL
from models.persistence.tables import dead_letters, email_deliveries, outbox
from models.persistence.unit_of_work import UnitOfWork
from tasks.emails import send_points_earned_email
from tasks.live_commands import adjust_points
from tests.support.commit_hooks import commit_hook
from tests.support.factories import adjustment, create_customer, create_shop
from tests.support.smtp import SmtpServer
from workers.db import Database


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        monkeypatch.setenv("LOYALTY_SMTP_HOST", server.host)
        monkeypatch.setenv("LOYALTY_SMTP_PORT", str(server.port))
        monkeypatch.setenv("LOYALTY_SIDE_EFFECT_MAX_ATTEMPTS", "3")
        yield server


@pytest.fixture
def shop(uow: UnitOfWork, shop_id: str) -> str:
    with uow:
        uow.shops.create(shop_id, "Tea & Co", "Tea & Co <hello@tea.example>")
        uow.tiers.set(shop_id, "Gold", 100)
        uow.commit()
    create_customer(uow, shop_id, "ada", email="ada@example.com", first_name="Ada")
    return shop_id


def email_row(connection: Connection, shop_id: str) -> Any:
    return connection.execute(
        select(outbox).where(
            outbox.c.shop_id == shop_id, outbox.c.task_name == SEND_POINTS_EARNED_EMAIL
        )
    ).one()


def test_an_increase_sends_one_email_with_the_new_balance(
    connection: Connection, shop: str, smtp: SmtpServer
) -> None:
    result = adjust_points(adjustment(shop, "ada", adjustment=1250))
    row = email_row(connection, shop)

    assert send_points_earned_email(row.id) == "sent"
    assert send_points_earned_email(row.id) == "already done"

    (message,) = smtp.wait_for(1)
    assert message["To"] == "ada@example.com"
    assert message["From"] == "Tea & Co <hello@tea.example>"
    assert "1,250" in message["Subject"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Ada" in text
    assert "1,250" in text
    delivery = connection.execute(
        select(email_deliveries).where(email_deliveries.c.shop_id == shop)
    ).one()
    assert str(delivery.transaction_id) == result["transaction_id"]
    assert delivery.status == "sent"
    assert message["Message-ID"] == delivery.message_id


def test_a_refusal_is_retried_and_the_email_then_sent_once(
    connection: Connection, shop: str, smtp: SmtpServer
) -> None:
    adjust_points(adjustment(shop, "ada", adjustment=10))
    row = email_row(connection, shop)
    smtp.refuse_next(1, code=451)

    first = send_points_earned_email(row.id)
    waiting = email_row(connection, shop)
    sent = send_points_earned_email(row.id)

    assert first.startswith("retry in ")
    assert "451" in first
    assert waiting.attempts == 1
    assert waiting.dispatched_at is None  # out of flight: the relay publishes it when due
    assert waiting.next_attempt_at is not None
    assert waiting.completed_at is None
    assert sent == "sent"
    assert len(smtp.wait_for(1)) == 1


def test_a_lost_reply_after_the_data_is_never_sent_again(
    connection: Connection, shop: str, smtp: SmtpServer
) -> None:
    adjust_points(adjustment(shop, "ada", adjustment=10))
    row = email_row(connection, shop)
    smtp.drop_after_data_next(1)

    outcome = send_points_earned_email(row.id)

    assert outcome.startswith("unknown")
    status = select(email_deliveries.c.status).where(email_deliveries.c.shop_id == shop)
    assert connection.execute(status).scalar_one() == "unknown"
    assert email_row(connection, shop).completed_at is not None


def test_a_permanent_refusal_is_a_dead_letter(
    connection: Connection, shop: str, smtp: SmtpServer
) -> None:
    adjust_points(adjustment(shop, "ada", adjustment=10))
    row = email_row(connection, shop)
    smtp.refuse_next(1, code=550)

    assert send_points_earned_email(row.id) == "dead"

    letter = connection.execute(select(dead_letters).where(dead_letters.c.shop_id == shop)).one()
    assert letter.outbox_id == row.id
    assert "550" in letter.error
    assert smtp.messages == []


def test_a_customer_without_email_owes_no_email(
    uow: UnitOfWork, connection: Connection, shop: str
) -> None:
    create_customer(uow, shop, "bob")
    adjust_points(adjustment(shop, "bob", adjustment=10))

    owed = connection.execute(select(outbox.c.task_name).where(outbox.c.shop_id == shop)).scalars()
    assert SEND_POINTS_EARNED_EMAIL not in list(owed)


class SenderDied(BaseException):
    """What a kill -9 looks like from inside: nothing after it runs."""


@pytest.fixture
def committed_shop(committed: Database) -> str:
    shop_id = f"mail-{uuid.uuid4().hex[:8]}"
    create_shop(committed.unit_of_work(), shop_id)
    create_customer(committed.unit_of_work(), shop_id, "ada", email="ada@example.com")
    return shop_id


def committed_email_row(committed: Database, shop_id: str) -> Any:
    with committed.engine.connect() as connection:
        return email_row(connection, shop_id)


def delivery_status(committed: Database, shop_id: str) -> str | None:
    with committed.engine.connect() as connection:
        return connection.execute(
            select(email_deliveries.c.status).where(email_deliveries.c.shop_id == shop_id)
        ).scalar_one_or_none()


def test_a_sender_that_dies_before_the_hand_over_leaves_the_email_to_the_next_attempt(
    committed: Database, committed_shop: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    adjust_points(adjustment(committed_shop, "ada", adjustment=10))
    row = committed_email_row(committed, committed_shop)

    def die_before(*_: object) -> None:
        raise SenderDied

    with monkeypatch.context() as patch:
        patch.setattr("models.services.emails._hand_over", die_before)
        with pytest.raises(SenderDied):
            send_points_earned_email(row.id)
    nothing_yet = (list(smtp.messages), delivery_status(committed, committed_shop))
    outcome = send_points_earned_email(row.id)

    assert nothing_yet == ([], None)
    assert outcome == "sent"
    assert len(smtp.wait_for(1)) == 1
    assert delivery_status(committed, committed_shop) == "sent"


def test_a_sender_that_dies_after_the_hand_over_never_sends_again(
    committed: Database, committed_shop: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    adjust_points(adjustment(committed_shop, "ada", adjustment=10))
    row = committed_email_row(committed, committed_shop)
    hand_over = models.services.emails._hand_over

    def die_after(*args: Any) -> None:
        hand_over(*args)
        raise SenderDied

    with monkeypatch.context() as patch:
        patch.setattr("models.services.emails._hand_over", die_after)
        with pytest.raises(SenderDied):
            send_points_earned_email(row.id)
    outcome = send_points_earned_email(row.id)

    assert outcome == "skipped: delivery already sending"
    assert delivery_status(committed, committed_shop) == "sending"
    assert committed_email_row(committed, committed_shop).completed_at is not None


def test_a_hand_over_whose_commit_fails_after_the_end_of_data_is_recorded_again(
    committed: Database, committed_shop: str, smtp: SmtpServer
) -> None:
    """The end-of-data marker left while the record's COMMIT was on its way, and the COMMIT
    failed: the message is out, so the record is written again and nothing sends it twice."""
    adjust_points(adjustment(committed_shop, "ada", adjustment=10))
    row = committed_email_row(committed, committed_shop)

    with commit_hook(committed.engine, committed_shop, "fail-once"):
        outcome = send_points_earned_email(row.id)
    again = send_points_earned_email(row.id)

    assert (outcome, again) == ("sent", "already done")
    assert len(smtp.wait_for(1)) == 1
    assert delivery_status(committed, committed_shop) == "sent"
