"""Table-driven tests of command validation at the edge (``parse_command``)."""

from __future__ import annotations

from typing import Any

import pytest

from models.domain.commands import AdjustPoints, InvalidCommand, UpsertCustomer, parse_command
from models.domain.errors import ErrorCode

DROP = object()
"""Marks a key to remove from the base payload."""


def adjust(**overrides: Any) -> dict[str, Any]:
    """A valid AdjustPoints payload, with fields overridden (or removed with ``DROP``)."""
    payload: dict[str, Any] = {
        "command_id": "cmd-1",
        "shop_id": "shop-1",
        "customer_id": "cust-1",
        "adjustment": 500,
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not DROP}


def upsert(**overrides: Any) -> dict[str, Any]:
    """A valid UpsertCustomer payload, with fields overridden (or removed with ``DROP``)."""
    payload: dict[str, Any] = {"command_id": "cmd-1", "shop_id": "shop-1", "customer_id": "cust-1"}
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not DROP}


def invalid(model: type[Any], payload: Any) -> list[dict[str, str]]:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(model, payload)
    errors = caught.value.errors
    assert errors, "an InvalidCommand must name at least one error"
    for error in errors:
        assert set(error) == {"field", "reason"}
    return errors


def assert_names(errors: list[dict[str, str]], field: str, keyword: str) -> None:
    matching = [e for e in errors if e["field"] == field]
    assert matching, f"no error names {field!r}: {errors}"
    assert any(keyword.lower() in e["reason"].lower() for e in matching), (
        f"no reason for {field!r} mentions {keyword!r}: {matching}"
    )


# --- AdjustPoints: rejected payloads ------------------------------------------------------------

WRONG_TYPES = [
    pytest.param(adjust(adjustment="500"), "adjustment", "integer", id="adjustment-string"),
    pytest.param(adjust(adjustment=500.5), "adjustment", "integer", id="adjustment-float"),
    pytest.param(adjust(adjustment=500.0), "adjustment", "integer", id="adjustment-whole-float"),
    pytest.param(adjust(adjustment=True), "adjustment", "integer", id="adjustment-bool"),
    pytest.param(adjust(adjustment=DROP, amount="500"), "amount", "integer", id="amount-string"),
    pytest.param(adjust(adjustment=DROP, balance="500"), "balance", "integer", id="balance-string"),
    pytest.param(adjust(adjustment=DROP, balance=500.5), "balance", "integer", id="balance-float"),
    pytest.param(adjust(adjustment=DROP, balance=True), "balance", "integer", id="balance-bool"),
    pytest.param(adjust(send_email="yes"), "send_email", "true or false", id="send-email-yes"),
    pytest.param(adjust(send_email=1), "send_email", "true or false", id="send-email-int"),
    pytest.param(
        adjust(update_lifetime_points="no"),
        "update_lifetime_points",
        "true or false",
        id="update-lifetime-string",
    ),
    pytest.param(adjust(note=5), "note", "string", id="note-int"),
    pytest.param(adjust(customer_id=12345), "customer_id", "string", id="customer-id-int"),
]

AMOUNTS = [
    pytest.param(adjust(adjustment=0), "adjustment", "zero", id="adjustment-zero"),
    pytest.param(adjust(adjustment=DROP, amount=0), "adjustment", "zero", id="amount-zero"),
    pytest.param(adjust(adjustment=10_000_000), "adjustment", "at most", id="adjustment-too-big"),
    pytest.param(
        adjust(adjustment=-10_000_000), "adjustment", "at least", id="adjustment-too-small"
    ),
    pytest.param(adjust(adjustment=DROP, balance=-1), "balance", "at least", id="balance-negative"),
    pytest.param(
        adjust(adjustment=DROP, balance=1_000_000_000), "balance", "at most", id="balance-too-big"
    ),
    pytest.param(adjust(adjustment=DROP), "adjustment", "required", id="neither-delta-nor-balance"),
    pytest.param(
        adjust(adjustment=None), "adjustment", "required", id="null-adjustment-without-balance"
    ),
]

FIELDS = [
    pytest.param(adjust(points=5), "points", "not a known field", id="unknown-field"),
    pytest.param(adjust(Adjustment=5), "Adjustment", "not a known field", id="wrong-case-field"),
    pytest.param(adjust(amount=500), "amount", "alias", id="adjustment-and-amount"),
    pytest.param(
        adjust(note="a", description="b"), "description", "alias", id="note-and-description"
    ),
    pytest.param(adjust(shop_id=DROP), "shop_id", "required", id="missing-shop-id"),
    pytest.param(adjust(command_id=DROP), "command_id", "required", id="missing-command-id"),
    pytest.param(adjust(customer_id=DROP), "customer_id", "required", id="missing-customer-id"),
    pytest.param(adjust(shop_id=None), "shop_id", "string", id="null-shop-id"),
    pytest.param(
        adjust(on_insufficient_points="clamp"),
        "on_insufficient_points",
        "floor",
        id="on-insufficient-unknown",
    ),
    pytest.param(
        adjust(on_insufficient_points="FLOOR"),
        "on_insufficient_points",
        "reject",
        id="on-insufficient-wrong-case",
    ),
    pytest.param(
        adjust(expected_revision=-1), "expected_revision", "at least", id="revision-negative"
    ),
    pytest.param(
        adjust(expected_revision="3"), "expected_revision", "integer", id="revision-string"
    ),
    pytest.param(
        adjust(expected_revision=3.0), "expected_revision", "integer", id="revision-float"
    ),
    pytest.param(
        adjust(expected_revision=True), "expected_revision", "integer", id="revision-bool"
    ),
]

NOTES = [
    pytest.param(adjust(note=""), "note", "empty", id="note-empty"),
    pytest.param(adjust(note="   "), "note", "empty", id="note-blank"),
    pytest.param(adjust(note=" \n\t "), "note", "empty", id="note-only-whitespace"),
    pytest.param(adjust(description="  "), "description", "empty", id="description-blank"),
    pytest.param(adjust(note="x" * 501), "note", "500", id="note-501-chars"),
    pytest.param(adjust(note="  " + "x" * 501 + "  "), "note", "500", id="note-501-after-trim"),
    pytest.param(adjust(note="a\x00b"), "note", "control", id="note-nul"),
    pytest.param(adjust(note="a\x1b[31mb"), "note", "control", id="note-escape"),
    pytest.param(adjust(note="a\x7fb"), "note", "control", id="note-del"),
    pytest.param(adjust(description="a\x00b"), "description", "control", id="description-nul"),
]

IDS = [
    pytest.param(adjust(**{key: value}), key, keyword, id=f"{key}-{label}")
    for key in ("command_id", "shop_id", "customer_id")
    for value, keyword, label in (
        ("", "empty", "empty"),
        ("x" * 129, "128", "129-chars"),
        (" abc", "whitespace", "leading-space"),
        ("abc ", "whitespace", "trailing-space"),
        ("\tabc", "", "leading-tab"),
        ("a\x00b", "control", "nul"),
        ("a\x1bb", "control", "escape"),
        ("a\nb", "", "newline"),
        ("cust-1\u202egnp.exe", "bidirectional", "right-to-left-override"),
        ("a\u2066b\u2069", "bidirectional", "isolate"),
    )
] + [
    pytest.param(adjust(source="x" * 129), "source", "128", id="source-129-chars"),
    pytest.param(adjust(actor="a\x00b"), "actor", "control", id="actor-nul"),
]


class TestAdjustPointsRejected:
    @pytest.mark.parametrize(("payload", "field", "keyword"), WRONG_TYPES)
    def test_wrong_types(self, payload: dict[str, Any], field: str, keyword: str):
        assert_names(invalid(AdjustPoints, payload), field, keyword)

    @pytest.mark.parametrize(("payload", "field", "keyword"), AMOUNTS)
    def test_amounts(self, payload: dict[str, Any], field: str, keyword: str):
        assert_names(invalid(AdjustPoints, payload), field, keyword)

    @pytest.mark.parametrize(("payload", "field", "keyword"), FIELDS)
    def test_fields(self, payload: dict[str, Any], field: str, keyword: str):
        assert_names(invalid(AdjustPoints, payload), field, keyword)

    @pytest.mark.parametrize(("payload", "field", "keyword"), NOTES)
    def test_notes(self, payload: dict[str, Any], field: str, keyword: str):
        assert_names(invalid(AdjustPoints, payload), field, keyword)

    @pytest.mark.parametrize(("payload", "field", "keyword"), IDS)
    def test_identifiers(self, payload: dict[str, Any], field: str, keyword: str):
        assert_names(invalid(AdjustPoints, payload), field, keyword)

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param([adjust()], id="list"),
            pytest.param('{"adjustment": 5}', id="string"),
            pytest.param(None, id="none"),
            pytest.param(42, id="int"),
        ],
    )
    def test_non_object_payload(self, payload: Any):
        errors = invalid(AdjustPoints, payload)
        assert errors == [{"field": "command", "reason": "must be a JSON object"}]

    def test_every_bad_field_is_reported(self):
        errors = invalid(AdjustPoints, adjust(shop_id=DROP, send_email="yes", colour="red"))
        assert {e["field"] for e in errors} >= {"shop_id", "send_email", "colour"}

    def test_rejection_is_invalid_command(self):
        with pytest.raises(InvalidCommand) as caught:
            parse_command(AdjustPoints, adjust(adjustment=0))
        rejection = caught.value.rejection()
        assert rejection.code is ErrorCode.INVALID_COMMAND
        assert rejection.code.http_status == 400
        assert rejection.details == {"errors": caught.value.errors}
        assert "adjustment" in rejection.message


# --- AdjustPoints: accepted payloads ------------------------------------------------------------


class TestAdjustPointsAccepted:
    def test_minimal_command_gets_the_defaults(self):
        cmd = parse_command(AdjustPoints, adjust())
        assert cmd.adjustment == 500
        assert cmd.balance is None
        assert cmd.note is None
        assert cmd.update_lifetime_points is True
        assert cmd.send_email is True
        assert cmd.expected_revision is None
        assert cmd.on_insufficient_points == "floor"

    def test_amount_is_an_alias_of_adjustment(self):
        by_alias = parse_command(AdjustPoints, adjust(adjustment=DROP, amount=-250))
        by_name = parse_command(AdjustPoints, adjust(adjustment=-250))
        assert by_alias.adjustment == -250
        assert by_alias == by_name

    def test_description_is_an_alias_of_note(self):
        by_alias = parse_command(AdjustPoints, adjust(description="goodwill"))
        by_name = parse_command(AdjustPoints, adjust(note="goodwill"))
        assert by_alias.note == "goodwill"
        assert by_alias == by_name

    def test_note_is_trimmed(self):
        assert parse_command(AdjustPoints, adjust(note="  goodwill \n")).note == "goodwill"

    @pytest.mark.parametrize(
        "note",
        [
            pytest.param("x", id="1-char"),
            pytest.param("x" * 500, id="500-chars"),
            pytest.param("   " + "x" * 500 + "\n ", id="500-chars-after-trim"),
            pytest.param("line one\nline two\tend", id="newline-and-tab-inside"),
            pytest.param("Geschenk für Ihre Treue 🎁", id="unicode"),
        ],
    )
    def test_valid_notes(self, note: str):
        assert parse_command(AdjustPoints, adjust(note=note)).note == note.strip()

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("x" * 128, id="128-chars"),
            pytest.param("gid://shopify/Customer/7", id="shopify-gid"),
            pytest.param("a b", id="inner-space"),
        ],
    )
    def test_valid_identifiers(self, value: str):
        cmd = parse_command(
            AdjustPoints, adjust(command_id=value, shop_id=value, customer_id=value)
        )
        assert (cmd.command_id, cmd.shop_id, cmd.customer_id) == (value, value, value)

    @pytest.mark.parametrize(
        ("fields", "adjustment", "balance"),
        [
            pytest.param({"adjustment": 9_999_999}, 9_999_999, None, id="max-adjustment"),
            pytest.param({"adjustment": -9_999_999}, -9_999_999, None, id="min-adjustment"),
            pytest.param({"adjustment": DROP, "balance": 0}, None, 0, id="balance-zero"),
            pytest.param(
                {"adjustment": DROP, "balance": 999_999_999}, None, 999_999_999, id="max-balance"
            ),
            pytest.param({"adjustment": 5, "balance": 100}, 5, 100, id="both-given"),
            pytest.param({"adjustment": None, "balance": 100}, None, 100, id="null-adjustment"),
        ],
    )
    def test_amount_bounds(
        self, fields: dict[str, Any], adjustment: int | None, balance: int | None
    ):
        cmd = parse_command(AdjustPoints, adjust(**fields))
        assert (cmd.adjustment, cmd.balance) == (adjustment, balance)

    def test_all_optional_fields(self):
        cmd = parse_command(
            AdjustPoints,
            adjust(
                note="n",
                update_lifetime_points=False,
                send_email=False,
                expected_revision=0,
                on_insufficient_points="reject",
                source="support-tool",
                actor="agent@example.com",
            ),
        )
        assert cmd.update_lifetime_points is False
        assert cmd.send_email is False
        assert cmd.expected_revision == 0
        assert cmd.on_insufficient_points == "reject"
        assert (cmd.source, cmd.actor) == ("support-tool", "agent@example.com")


# --- payload hash -------------------------------------------------------------------------------

BASE_FOR_HASH: dict[str, Any] = adjust(note="goodwill", expected_revision=3)


def payload_hash(payload: dict[str, Any]) -> str:
    return parse_command(AdjustPoints, payload).payload_hash()


class TestPayloadHash:
    def test_hash_is_a_sha256_hex_digest(self):
        digest = payload_hash(BASE_FOR_HASH)
        assert len(digest) == 64
        assert int(digest, 16) >= 0

    @pytest.mark.parametrize(
        "variant",
        [
            pytest.param(dict(reversed(BASE_FOR_HASH.items())), id="key-order"),
            pytest.param({**BASE_FOR_HASH, "adjustment": DROP, "amount": 500}, id="amount-alias"),
            pytest.param(
                {**BASE_FOR_HASH, "note": DROP, "description": "goodwill"}, id="description-alias"
            ),
            pytest.param({**BASE_FOR_HASH, "note": "  goodwill\n"}, id="note-padding"),
        ],
    )
    def test_same_meaning_same_hash(self, variant: dict[str, Any]):
        variant = {key: value for key, value in variant.items() if value is not DROP}
        assert payload_hash(variant) == payload_hash(BASE_FOR_HASH)

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"command_id": "cmd-2"}, id="command-id"),
            pytest.param({"shop_id": "shop-2"}, id="shop-id"),
            pytest.param({"customer_id": "cust-2"}, id="customer-id"),
            pytest.param({"adjustment": 501}, id="adjustment"),
            pytest.param({"adjustment": -500}, id="adjustment-sign"),
            pytest.param({"balance": 500}, id="balance-added"),
            pytest.param({"note": "Goodwill"}, id="note-case"),
            pytest.param({"note": DROP}, id="note-removed"),
            pytest.param({"update_lifetime_points": False}, id="update-lifetime"),
            pytest.param({"send_email": False}, id="send-email"),
            pytest.param({"expected_revision": 4}, id="expected-revision"),
            pytest.param({"on_insufficient_points": "reject"}, id="on-insufficient"),
            pytest.param({"source": "migration"}, id="source"),
            pytest.param({"actor": "agent-7"}, id="actor"),
        ],
    )
    def test_any_different_value_changes_the_hash(self, change: dict[str, Any]):
        variant = {**BASE_FOR_HASH, **change}
        variant = {key: value for key, value in variant.items() if value is not DROP}
        assert payload_hash(variant) != payload_hash(BASE_FOR_HASH)


# --- UpsertCustomer -----------------------------------------------------------------------------


class TestUpsertCustomer:
    @pytest.mark.parametrize(
        ("payload", "field", "keyword"),
        [
            pytest.param(upsert(email="not-an-email"), "email", "email", id="email-no-at"),
            pytest.param(upsert(email="a@b"), "email", "email", id="email-no-domain-dot"),
            pytest.param(upsert(email="a b@example.com"), "email", "email", id="email-space"),
            pytest.param(upsert(email="@example.com"), "email", "email", id="email-no-local"),
            pytest.param(upsert(email=5), "email", "string", id="email-int"),
            pytest.param(upsert(phone="call me"), "phone", "phone", id="phone-letters"),
            pytest.param(upsert(phone="12"), "phone", "phone", id="phone-too-short"),
            pytest.param(upsert(phone="1" * 33), "phone", "phone", id="phone-too-long"),
            pytest.param(upsert(phone=5551234), "phone", "string", id="phone-int"),
            pytest.param(upsert(excluded="yes"), "excluded", "true or false", id="excluded-yes"),
            pytest.param(upsert(excluded=1), "excluded", "true or false", id="excluded-int"),
            pytest.param(upsert(excluded="true"), "excluded", "true or false", id="excluded-str"),
            pytest.param(upsert(first_name="  "), "first_name", "empty", id="first-name-blank"),
            pytest.param(upsert(last_name="x" * 101), "last_name", "100", id="last-name-long"),
            pytest.param(
                upsert(first_name="Ada\u202e"), "first_name", "bidirectional", id="first-name-rlo"
            ),
            pytest.param(
                upsert(last_name="\u202dLovelace"), "last_name", "bidirectional", id="last-name-lro"
            ),
            pytest.param(upsert(nickname="Bo"), "nickname", "not a known field", id="unknown"),
            pytest.param(upsert(adjustment=5), "adjustment", "not a known field", id="adjustment"),
            pytest.param(upsert(customer_id=DROP), "customer_id", "required", id="no-customer-id"),
            pytest.param(upsert(shop_id=DROP), "shop_id", "required", id="no-shop-id"),
            pytest.param(upsert(command_id=""), "command_id", "empty", id="empty-command-id"),
        ],
    )
    def test_rejected(self, payload: dict[str, Any], field: str, keyword: str):
        assert_names(invalid(UpsertCustomer, payload), field, keyword)

    @pytest.mark.parametrize(
        "payload", [pytest.param([], id="list"), pytest.param(None, id="none")]
    )
    def test_non_object_payload(self, payload: Any):
        assert invalid(UpsertCustomer, payload) == [
            {"field": "command", "reason": "must be a JSON object"}
        ]

    def test_minimal_upsert_leaves_everything_unset(self):
        cmd = parse_command(UpsertCustomer, upsert())
        assert (cmd.email, cmd.phone, cmd.first_name, cmd.last_name, cmd.excluded) == (
            None,
            None,
            None,
            None,
            None,
        )

    def test_full_upsert(self):
        cmd = parse_command(
            UpsertCustomer,
            upsert(
                email=" ada@example.com ",
                phone="+1 (555) 123-4567",
                first_name="Ada",
                last_name="Lovelace",
                excluded=True,
            ),
        )
        assert cmd.email == "ada@example.com"
        assert cmd.phone == "+1 (555) 123-4567"
        assert (cmd.first_name, cmd.last_name) == ("Ada", "Lovelace")
        assert cmd.excluded is True

    @pytest.mark.parametrize("excluded", [True, False])
    def test_excluded_is_a_bool(self, excluded: bool):
        assert parse_command(UpsertCustomer, upsert(excluded=excluded)).excluded is excluded
