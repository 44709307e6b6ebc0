"""Sending over real SMTP (a local aiosmtpd server), and telling the two failures apart: refused
for certain (retry, or dead-letter when permanent) versus possibly delivered (never resend)."""

from __future__ import annotations

import pickle
import socket
import traceback
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest

from models.domain.emails import PointsEarnedEmail, render_points_earned
from tests.support.smtp import SmtpServer
from workers.outbound.mailer import (
    EmailDeliveryError,
    EmailNotSent,
    EmailOutcomeUnknown,
    SmtpSettings,
    send_email,
)
from workers.outbound.mailer.errors import redacted

USERNAME = "mailer"
PASSWORD = "pa55-w0rd-never-shown"
TRANSACTION_ID = "5f0c3a52-8a8f-4d0c-b8f6-0e2e0f7b6c11"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as smtp:
        yield smtp


@pytest.fixture
def auth_server() -> Iterator[SmtpServer]:
    with SmtpServer(auth=(USERNAME, PASSWORD)) as smtp:
        yield smtp


def settings_for(server: SmtpServer, **overrides: object) -> SmtpSettings:
    fields: dict[str, object] = {"host": server.host, "port": server.port, "timeout": 5.0}
    fields.update(overrides)
    return SmtpSettings(**fields)  # type: ignore[arg-type]


def points_email(**overrides: object) -> EmailMessage:
    fields: dict[str, object] = {
        "transaction_id": TRANSACTION_ID,
        "shop_name": "Corner Books",
        "sender": "Corner Books <points@cornerbooks.example>",
        "recipient": "ada@example.com",
        "first_name": "Ada",
        "points": 50,
        "balance": 1050,
        "lifetime_points": 2050,
        "tier": None,
    }
    fields.update(overrides)
    return render_points_earned(PointsEarnedEmail(**fields))  # type: ignore[arg-type]


def every_text(error: BaseException) -> str:
    """The exception as a log or a dead letter would show it, causes included."""
    return repr(error) + "".join(traceback.format_exception(error))


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port: int = listener.getsockname()[1]
    return port


# Delivery


def test_a_message_is_delivered_with_its_envelope_and_parts(server: SmtpServer) -> None:
    send_email(points_email(), settings_for(server))

    [received] = server.wait_for(1)
    assert received.envelope_from == "points@cornerbooks.example"
    assert received.envelope_to == ("ada@example.com",)
    assert received["Message-ID"] == f"<earned.{TRANSACTION_ID}@loyalty.invalid>"
    assert received["Subject"] == "You earned 50 points at Corner Books"
    assert [part.get_content_type() for part in received.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


def test_a_message_is_delivered_after_logging_in(auth_server: SmtpServer) -> None:
    settings = settings_for(auth_server, username=USERNAME, password=PASSWORD)

    send_email(points_email(), settings)

    assert len(auth_server.wait_for(1)) == 1


def test_cc_addresses_are_recipients_too(server: SmtpServer) -> None:
    message = points_email()
    message["Cc"] = "Shop Owner <owner@cornerbooks.example>"

    send_email(message, settings_for(server))

    [received] = server.wait_for(1)
    assert received.envelope_to == ("ada@example.com", "owner@cornerbooks.example")


def test_lines_starting_with_a_dot_arrive_intact(server: SmtpServer) -> None:
    """SMTP ends DATA at a lone dot, so leading dots must be doubled on the wire."""
    message = EmailMessage()
    message["From"] = "points@cornerbooks.example"
    message["To"] = "ada@example.com"
    message["Subject"] = "dots"
    body = "first\n.\n.hidden\n..two\nlast\n"
    message.set_content(body)

    send_email(message, settings_for(server))

    [received] = server.wait_for(1)
    assert received.get_content() == body
    assert b"\r\n.hidden\r\n" in received.raw


def test_a_non_ascii_address_is_sent_with_smtputf8(server: SmtpServer) -> None:
    send_email(points_email(recipient="zoë@example.com"), settings_for(server))

    [received] = server.wait_for(1)
    assert received.envelope_to == ("zoë@example.com",)
    assert received["To"] == "zoë@example.com"


def test_a_message_without_recipients_is_a_programming_error(server: SmtpServer) -> None:
    message = points_email()
    del message["To"]

    with pytest.raises(ValueError, match="no To or Cc"):
        send_email(message, settings_for(server))


# Refused for certain: EmailNotSent


def test_a_451_at_rcpt_is_worth_retrying(server: SmtpServer) -> None:
    server.refuse_next(1, code=451)

    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings_for(server))

    assert caught.value.permanent is False
    assert caught.value.smtp_code == 451
    assert "451" in str(caught.value)
    assert server.messages == []
    send_email(points_email(), settings_for(server))  # the retry goes through
    assert len(server.wait_for(1)) == 1


def test_a_550_at_rcpt_is_permanent(server: SmtpServer) -> None:
    server.refuse_next(1, code=550)

    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings_for(server))

    assert caught.value.permanent is True
    assert caught.value.smtp_code == 550
    assert server.messages == []


@pytest.mark.parametrize(("code", "permanent"), [(451, False), (554, True)])
def test_a_refusal_at_the_end_of_data_is_not_sent(
    server: SmtpServer, code: int, permanent: bool
) -> None:
    server.refuse_next(1, code=code, at="data")

    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings_for(server))

    assert caught.value.permanent is permanent
    assert caught.value.smtp_code == code
    assert server.messages == []


def test_a_closed_port_is_worth_retrying() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=closed_port(), timeout=5.0)

    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings)

    assert caught.value.permanent is False
    assert caught.value.smtp_code is None
    assert "ConnectionRefusedError" in str(caught.value)


def test_a_server_that_never_greets_times_out_worth_retrying() -> None:
    """The kernel accepts the connection; nothing ever answers."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        settings = SmtpSettings(host="127.0.0.1", port=silent.getsockname()[1], timeout=0.3)

        with pytest.raises(EmailNotSent) as caught:
            send_email(points_email(), settings)

    assert caught.value.permanent is False


def test_wrong_credentials_are_permanent(auth_server: SmtpServer) -> None:
    settings = settings_for(auth_server, username=USERNAME, password="not-" + PASSWORD)

    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings)

    assert caught.value.permanent is True
    assert caught.value.smtp_code == 535
    assert "AUTH" in str(caught.value)
    assert PASSWORD not in every_text(caught.value)
    assert auth_server.messages == []


def test_sending_without_credentials_where_they_are_required_is_permanent(
    auth_server: SmtpServer,
) -> None:
    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings_for(auth_server))

    assert caught.value.permanent is True
    assert caught.value.smtp_code == 530


def test_credentials_for_a_server_without_auth_are_a_permanent_misconfiguration(
    server: SmtpServer,
) -> None:
    settings = settings_for(server, username=USERNAME, password=PASSWORD)

    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings)

    assert caught.value.permanent is True
    assert PASSWORD not in every_text(caught.value)


def test_starttls_against_a_server_without_it_is_a_permanent_misconfiguration(
    server: SmtpServer,
) -> None:
    with pytest.raises(EmailNotSent) as caught:
        send_email(points_email(), settings_for(server, starttls=True))

    assert caught.value.permanent is True
    assert "STARTTLS" in str(caught.value)
    assert server.messages == []


def test_a_server_echoing_the_password_is_redacted() -> None:
    """Belt and braces: whatever a server replies, the password is not repeated."""
    settings = SmtpSettings(password=PASSWORD, username=USERNAME)

    assert redacted(f"535 {PASSWORD} is wrong", settings) == "535 [redacted] is wrong"


# Possibly delivered: EmailOutcomeUnknown


def test_a_connection_dropped_after_data_leaves_the_outcome_unknown(server: SmtpServer) -> None:
    server.drop_after_data_next(1)

    with pytest.raises(EmailOutcomeUnknown) as caught:
        send_email(points_email(), settings_for(server))

    assert "may have been delivered" in str(caught.value)
    assert len(server.wait_for(1)) == 1, "the server did get the message"


def test_no_reply_after_data_leaves_the_outcome_unknown(server: SmtpServer) -> None:
    server.stall_after_data_next(1)

    with pytest.raises(EmailOutcomeUnknown):
        send_email(points_email(), settings_for(server, timeout=0.5))

    assert len(server.wait_for(1)) == 1


# The hand-over


def test_the_hand_over_runs_once_the_server_has_all_but_the_end_of_data(
    server: SmtpServer,
) -> None:
    seen_by_the_hand_over: list[int] = []

    def hand_over(end_of_data: Callable[[], None]) -> None:
        seen_by_the_hand_over.append(len(server.messages))
        end_of_data()

    send_email(points_email(), settings_for(server), hand_over=hand_over)

    assert seen_by_the_hand_over == [0]
    assert len(server.wait_for(1)) == 1


class Died(BaseException):
    pass


def test_a_hand_over_that_raises_first_aborts_the_message_unsent(server: SmtpServer) -> None:
    def die(end_of_data: Callable[[], None]) -> None:
        raise Died

    with pytest.raises(Died):
        send_email(points_email(), settings_for(server), hand_over=die)
    send_email(points_email(), settings_for(server))  # returns once the server has accepted it

    assert len(server.messages) == 1, "the aborted session delivered nothing"


def test_a_hand_over_that_raises_after_the_end_of_data_has_handed_the_message_over(
    server: SmtpServer,
) -> None:
    def send_then_die(end_of_data: Callable[[], None]) -> None:
        end_of_data()
        raise Died

    with pytest.raises(Died):
        send_email(points_email(), settings_for(server), hand_over=send_then_die)

    assert len(server.wait_for(1)) == 1


def test_a_hand_over_that_never_sends_the_end_of_data_is_a_bug(server: SmtpServer) -> None:
    with pytest.raises(RuntimeError, match="end-of-data"):
        send_email(points_email(), settings_for(server), hand_over=lambda end_of_data: None)

    assert server.messages == []


def test_faults_are_used_up_and_reset_clears_everything(server: SmtpServer) -> None:
    server.drop_after_data_next(1)
    with pytest.raises(EmailOutcomeUnknown):
        send_email(points_email(), settings_for(server))
    send_email(points_email(), settings_for(server))
    assert len(server.wait_for(2)) == 2

    server.refuse_next(5, code=550)
    server.reset()

    assert server.messages == []
    send_email(points_email(), settings_for(server))
    assert len(server.wait_for(1)) == 1


def test_the_exceptions_survive_pickling() -> None:
    """Celery may carry a task's exception across processes."""
    not_sent = pickle.loads(pickle.dumps(EmailNotSent("refused", permanent=True, smtp_code=550)))
    unknown = pickle.loads(pickle.dumps(EmailOutcomeUnknown("lost")))

    assert (str(not_sent), not_sent.permanent, not_sent.smtp_code) == ("refused", True, 550)
    assert str(unknown) == "lost"
    assert isinstance(not_sent, EmailDeliveryError)
    assert isinstance(unknown, EmailDeliveryError)


# Settings from the environment


def test_settings_default_when_nothing_is_set() -> None:
    assert SmtpSettings.from_environment({}) == SmtpSettings(
        host="localhost",
        port=25,
        username=None,
        password=None,
        starttls=False,
        timeout=10.0,
        default_sender="loyalty@localhost",
    )


def test_settings_read_every_variable() -> None:
    settings = SmtpSettings.from_environment(
        {
            "LOYALTY_SMTP_HOST": "smtp.example.com",
            "LOYALTY_SMTP_PORT": "587",
            "LOYALTY_SMTP_USERNAME": USERNAME,
            "LOYALTY_SMTP_PASSWORD": PASSWORD,
            "LOYALTY_SMTP_STARTTLS": "Yes",
            "LOYALTY_SMTP_TIMEOUT": "2.5",
            "LOYALTY_EMAIL_FROM": "Points <points@example.com>",
        }
    )

    assert settings == SmtpSettings(
        host="smtp.example.com",
        port=587,
        username=USERNAME,
        password=PASSWORD,
        starttls=True,
        timeout=2.5,
        default_sender="Points <points@example.com>",
    )
    assert PASSWORD not in repr(settings)


def test_settings_come_from_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOYALTY_SMTP_HOST", "mail.internal")
    monkeypatch.setenv("LOYALTY_SMTP_PORT", "2525")

    settings = SmtpSettings.from_environment()

    assert (settings.host, settings.port) == ("mail.internal", 2525)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("no", False)],
)
def test_starttls_words(value: str, expected: bool) -> None:
    settings = SmtpSettings.from_environment({"LOYALTY_SMTP_STARTTLS": value})

    assert settings.starttls is expected


def test_empty_variables_count_as_unset() -> None:
    names = ["HOST", "PORT", "USERNAME", "PASSWORD", "STARTTLS", "TIMEOUT"]
    environ = {f"LOYALTY_SMTP_{name}": "" for name in names}

    assert SmtpSettings.from_environment({**environ, "LOYALTY_EMAIL_FROM": ""}) == SmtpSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOYALTY_SMTP_PORT", "smtp"),
        ("LOYALTY_SMTP_PORT", "0"),
        ("LOYALTY_SMTP_PORT", "65536"),
        ("LOYALTY_SMTP_PORT", "2.5"),
        ("LOYALTY_SMTP_STARTTLS", "maybe"),
        ("LOYALTY_SMTP_TIMEOUT", "soon"),
        ("LOYALTY_SMTP_TIMEOUT", "0"),
        ("LOYALTY_SMTP_TIMEOUT", "-1"),
        ("LOYALTY_SMTP_TIMEOUT", "nan"),
        ("LOYALTY_SMTP_TIMEOUT", "inf"),
        ("LOYALTY_EMAIL_FROM", "not an address"),
        ("LOYALTY_EMAIL_FROM", "a@example.com, b@example.com"),
    ],
)
def test_an_invalid_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name) as caught:
        SmtpSettings.from_environment({name: value})

    assert repr(value) in str(caught.value)


def test_a_username_needs_a_password() -> None:
    with pytest.raises(ValueError, match="LOYALTY_SMTP_PASSWORD"):
        SmtpSettings.from_environment({"LOYALTY_SMTP_USERNAME": USERNAME})


def test_a_password_without_username_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="LOYALTY_SMTP_USERNAME") as caught:
        SmtpSettings.from_environment({"LOYALTY_SMTP_PASSWORD": PASSWORD})

    assert PASSWORD not in every_text(caught.value)
