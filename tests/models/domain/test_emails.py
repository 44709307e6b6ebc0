"""The points-earned email: both parts, the numbers, the greeting, the tier line, escaping of
untrusted names, and a Message-ID that identifies the transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from models.domain.emails import (
    PointsEarnedEmail,
    points_earned_message_id,
    render_points_earned,
)

TRANSACTION_ID = "0b7d8c1e-5a4f-4f7e-9a51-3f1f1c0d2e6a"


def earned(**overrides: Any) -> PointsEarnedEmail:
    fields: dict[str, Any] = {
        "transaction_id": TRANSACTION_ID,
        "shop_name": "Corner Books",
        "sender": "Corner Books <points@cornerbooks.example>",
        "recipient": "ada@example.com",
        "first_name": "Ada",
        "points": 1250,
        "balance": 12345,
        "lifetime_points": 1234567,
        "tier": "Gold",
    }
    fields.update(overrides)
    return PointsEarnedEmail(**fields)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def test_the_message_is_multipart_alternative_with_text_then_html() -> None:
    message = render_points_earned(earned())

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())


def test_headers_name_sender_recipient_and_points() -> None:
    sent_at = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)

    message = render_points_earned(earned(), sent_at=sent_at)

    assert message["From"] == "Corner Books <points@cornerbooks.example>"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "You earned 1,250 points at Corner Books"
    assert message["Date"].datetime == sent_at
    assert message["Auto-Submitted"] == "auto-generated"


def test_the_date_defaults_to_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    message = render_points_earned(earned())

    assert before <= message["Date"].datetime <= datetime.now(UTC)


def test_numbers_have_thousands_separators_in_both_parts() -> None:
    text, html = parts(render_points_earned(earned()))

    for part in (text, html):
        assert "1,250 points" in part
        assert "12,345 points" in part
        assert "1,234,567 points" in part


def test_one_point_is_singular() -> None:
    message = render_points_earned(earned(points=1, balance=1, lifetime_points=1))

    assert message["Subject"] == "You earned 1 point at Corner Books"
    text, html = parts(message)
    assert "You just earned 1 point at Corner Books." in text
    assert "1 points" not in text
    assert "1 points" not in html


def test_the_greeting_uses_the_first_name() -> None:
    text, html = parts(render_points_earned(earned(first_name="Ada")))

    assert text.startswith("Hi Ada,\n")
    assert "Hi Ada," in html
    assert "Hello," not in text + html


@pytest.mark.parametrize("first_name", [None, "", "   "])
def test_the_greeting_falls_back_without_a_first_name(first_name: str | None) -> None:
    text, html = parts(render_points_earned(earned(first_name=first_name)))

    assert text.startswith("Hello,\n")
    assert "Hello," in html
    assert "Hi " not in text + html


def test_the_tier_line_appears_when_there_is_a_tier() -> None:
    text, html = parts(render_points_earned(earned(tier="Gold")))

    assert "Tier:            Gold" in text
    assert ">Tier</td>" in html
    assert ">Gold</td>" in html


@pytest.mark.parametrize("tier", [None, ""])
def test_the_tier_line_is_left_out_without_a_tier(tier: str | None) -> None:
    text, html = parts(render_points_earned(earned(tier=tier)))

    assert "Tier" not in text
    assert "Tier" not in html


def test_untrusted_names_are_escaped_in_html_only() -> None:
    message = render_points_earned(
        earned(shop_name="<b>&Co", first_name='<script>alert("x")</script>', tier="<i>VIP")
    )
    text, html = parts(message)

    assert "&lt;b&gt;&amp;Co" in html
    assert "<b>" not in html
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    assert "&lt;i&gt;VIP" in html
    assert "at <b>&Co." in text
    assert 'Hi <script>alert("x")</script>,' in text
    assert message["Subject"] == "You earned 1,250 points at <b>&Co"


def test_line_breaks_in_a_shop_name_cannot_inject_headers() -> None:
    message = render_points_earned(earned(shop_name="Evil\r\nBcc: victim@example.com"))

    assert message["Subject"] == "You earned 1,250 points at Evil Bcc: victim@example.com"
    assert message["Bcc"] is None


def test_the_message_id_is_derived_from_the_transaction() -> None:
    first = render_points_earned(earned(), sent_at=datetime(2025, 1, 1, tzinfo=UTC))
    again = render_points_earned(earned(first_name=None), sent_at=datetime(2026, 1, 1, tzinfo=UTC))
    other = render_points_earned(earned(transaction_id="another-transaction"))

    expected = f"<earned.{TRANSACTION_ID}@loyalty.invalid>"
    assert first["Message-ID"] == expected
    assert again["Message-ID"] == expected
    assert points_earned_message_id(TRANSACTION_ID) == expected
    assert other["Message-ID"] != expected


def test_the_message_survives_a_round_trip_through_bytes() -> None:
    """What SMTP carries parses back to the same headers and parts."""
    message = render_points_earned(earned(shop_name="Café Ünïcode", first_name="Zoë"))

    raw = message.as_bytes(policy=policy.SMTP)
    parsed = message_from_bytes(raw, policy=policy.default)

    assert f"\r\nMessage-ID: <earned.{TRANSACTION_ID}@".encode() in raw, "not folded"

    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "You earned 1,250 points at Café Ünïcode"
    assert parsed["Message-ID"] == message["Message-ID"]
    text, html = parts(parsed)
    assert "Hi Zoë," in text
    assert "Café Ünïcode" in html


@pytest.mark.parametrize("points", [0, -5])
def test_points_must_be_positive(points: int) -> None:
    with pytest.raises(ValueError, match="points must be positive"):
        earned(points=points)


@pytest.mark.parametrize("transaction_id", ["", "has space", "a>b", "line\nbreak", ".leading"])
def test_a_transaction_id_that_cannot_be_a_message_id_is_rejected(transaction_id: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        earned(transaction_id=transaction_id)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipient", "not an address"),
        ("recipient", "a@example.com, b@example.com"),
        ("sender", ""),
    ],
)
def test_sender_and_recipient_must_each_be_one_address(field: str, value: str) -> None:
    email = earned(**{field: value})

    with pytest.raises(ValueError, match="exactly one email address"):
        render_points_earned(email)
