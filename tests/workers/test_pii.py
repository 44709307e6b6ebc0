"""What support staff may see of a customer's contact details: enough to recognise them, not
enough to identify them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from workers.pii import (
    REPR_MAXSIZE,
    MaskingLogFilter,
    mask,
    mask_text,
    masked_repr,
    masked_result_repr,
)


def test_every_email_and_phone_at_any_depth_is_masked_in_a_copy() -> None:
    bulk = [
        {"command_id": "a", "customer_id": "c1", "adjustment": 5},
        {"upsert_customer": {"customer_id": "c2", "email": "jane.doe@example.com"}},
        {"upsert_customer": {"customer_id": "c3", "phone": "+1 (555) 010-0189", "email": None}},
    ]

    shown = mask(bulk)

    assert shown == [
        {"command_id": "a", "customer_id": "c1", "adjustment": 5},
        {"upsert_customer": {"customer_id": "c2", "email": "j***@e***.com"}},
        {"upsert_customer": {"customer_id": "c3", "phone": "+*********89", "email": None}},
    ]
    assert bulk[1]["upsert_customer"]["email"] == "jane.doe@example.com"  # not changed


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("ada@example.co.uk", "a***@e***.uk"),
        ("x@localhost", "x***@l***"),
        ("not an email", "***"),
        ("", "***"),
        (42, "***"),
        (["a@b.com"], "***"),
    ],
)
def test_odd_emails_still_show_nothing_identifying(value: object, shown: str) -> None:
    assert mask({"Email": value}) == {"Email": shown}


@pytest.mark.parametrize(
    ("phone", "shown"),
    [("+44 20 7946 0958", "+**********58"), ("0170 1234567", "*********67"), ("1234", "****")],
)
def test_a_phone_keeps_its_plus_and_last_two_digits(phone: str, shown: str) -> None:
    assert mask({"phone": phone}) == {"phone": shown}


def test_addresses_inside_other_text_are_masked_too() -> None:
    assert mask({"note": "moved from ada@old.example.com, see ticket"}) == {
        "note": "moved from a***@o***.com, see ticket"
    }


def test_the_repr_is_celerys_truncated_repr_of_the_masked_value() -> None:
    huge = [{"email": f"customer{i}@example.com"} for i in range(100_000)]

    shown = masked_repr([huge])

    assert shown.startswith("[[{'email': 'c***@e***.com'}, {'email': 'c***@e***.com'}")
    assert shown.endswith("...]]")
    assert len(shown) < 1100
    assert "@example.com" not in shown


def test_a_result_shows_as_its_masked_repr_cut_at_the_limit() -> None:
    result = {"status": "applied", "account": {"email": "ada@example.com"}, "note": "x" * 2000}

    shown = masked_result_repr(result)

    assert shown.startswith("{'status': 'applied', 'account': {'email': 'a***@e***.com'}")
    assert len(shown) == 1024
    assert shown.endswith("...")
    assert masked_result_repr({"status": "applied"}) == "{'status': 'applied'}"


def test_a_value_nested_a_thousand_deep_is_masked_down_to_a_bound_and_elided_below() -> None:
    value: object = [{"email": "ada@example.com"}]
    for _ in range(1000):
        value = [value]

    shown = mask({"nested": value, "email": "ada@example.com"})

    assert shown["email"] == "a***@e***.com"
    assert "…" in repr(shown)
    assert "ada@example.com" not in masked_repr(value)


@pytest.mark.timeout(10)
def test_masking_a_megabyte_token_takes_linear_time() -> None:
    # A scan from every position of the token, as an unanchored address pattern makes, would take
    # hours here; a linear one takes milliseconds.
    token = "x" * 1_000_000

    assert mask_text(token) == token
    assert mask_text(token + " ada@example.com") == token + " a***@e***.com"
    shown = masked_repr({"note": token})
    assert shown.startswith("{'note': 'xxx")
    assert "...'" in shown
    assert len(shown) < 2 * REPR_MAXSIZE


def test_an_address_cut_by_the_repr_limit_is_masked_whole() -> None:
    note = "y" * 1015 + " ada.lovelace@example.com"

    assert "ada" not in masked_repr({"note": note})


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.addFilter(MaskingLogFilter())
    logger = logging.getLogger("tests.pii")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, written
    logger.removeHandler(handler)


def test_the_log_filter_masks_addresses_in_messages_and_tracebacks(
    log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, written = log
    try:
        raise ValueError("smtp refused recipients: jane.doe@example.com: 550 no such user")
    except ValueError:
        logger.exception("outbox %s gave up: %s", 7, "550 <bob@example.org>")
    logger.warning("nothing to hide in %s", "this line")

    text = written.getvalue()
    assert "outbox 7 gave up: 550 <b***@e***.org>" in text
    assert "ValueError: smtp refused recipients: j***@e***.com: 550 no such user" in text
    assert "nothing to hide in this line" in text
    assert "jane.doe" not in text
    assert "bob@" not in text
