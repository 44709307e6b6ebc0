"""Reading and checking a migration file: pure, no database."""

from __future__ import annotations

import pytest

from models.domain.migration import MigrationFile, Row, RowError, detect_kind


def check_csv(text: str) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in MigrationFile("shop", text, "csv").check().errors]


def rows_of(text: str, kind: str = "csv") -> list[Row]:
    return [row for row in MigrationFile("shop", text, kind).rows() if isinstance(row, Row)]


class TestCsv:
    def test_empty_cells_are_absent_and_numbers_are_whole_numbers(self) -> None:
        rows = rows_of("customer_id,email,balance,note\nc1,, +500 ,\n")

        assert rows == [Row(2, {"customer_id": "c1", "balance": 500})]

    @pytest.mark.parametrize("cell", ["1.5", "1e3", "five", "1,000"])
    def test_a_number_that_is_not_whole_is_refused_with_the_cell(self, cell: str) -> None:
        errors = MigrationFile("s", f'customer_id,balance\nc1,"{cell}"\n', "csv").check().errors

        assert errors == [RowError(2, "balance", f"must be a whole number, got {cell!r}")]

    def test_unknown_and_missing_columns_are_named_on_line_one(self) -> None:
        errors = MigrationFile("s", "customer,points\nc1,5\n", "csv").check().errors

        assert [(e.line, e.field) for e in errors] == [(1, "header")] * 3
        assert "unknown column(s) 'customer', 'points'" in errors[0].reason
        assert "customer_id column is required" in errors[1].reason
        assert "balance or an adjustment column" in errors[2].reason

    def test_every_bad_row_is_reported_with_its_line_and_every_field(self) -> None:
        text = (
            "customer_id,email,balance,adjustment,note\n"
            "ok,ok@example.com,10,,\n"
            "b,not-an-email,x,,\n"
            ',,5,,"a note\nover two lines"\n'
            "ok,,20,,\n"
            "d,,5,6,\n"
            "e,,,0,\n"
            "f,,,,\n"
        )

        assert check_csv(text) == [
            (3, "balance"),
            (3, "email"),
            (4, "customer_id"),
            (6, "customer_id"),  # "ok" again: one row per customer
            (7, "balance"),  # both given
            (8, "adjustment"),  # zero
            (9, "balance"),  # neither given
        ]

    def test_a_row_with_too_many_cells_is_refused(self) -> None:
        assert check_csv("customer_id,balance\nc1,5,extra\n") == [(2, "row")]


class TestJsonLines:
    def test_keys_are_the_columns_and_integers_must_be_json_integers(self) -> None:
        text = (
            '{"customer_id": "a", "balance": 5, "email": null}\n'
            "\n"
            '{"customer_id": "b", "balance": "5"}\n'
            '{"customer_id": "c", "points": 5}\n'
            "[1]\n"
            "{broken\n"
        )
        migration = MigrationFile("s", text, "jsonl")

        assert [(e.line, e.field) for e in migration.check().errors] == [
            (3, "balance"),
            (4, "points"),
            (5, "row"),
            (6, "row"),
        ]
        assert rows_of(text, "jsonl")[0] == Row(1, {"customer_id": "a", "balance": 5})

    @pytest.mark.parametrize(
        ("name", "content", "kind"),
        [
            ("m.csv", "{}", "csv"),
            ("m.jsonl", "a,b", "jsonl"),
            ("m.ndjson", "", "jsonl"),
            ("export.txt", ' {"customer_id": "a"}', "jsonl"),
            ("export.txt", "customer_id,balance", "csv"),
        ],
    )
    def test_the_kind_comes_from_the_extension_else_the_content(
        self, name: str, content: str, kind: str
    ) -> None:
        assert detect_kind(name, content) == kind


class TestCommands:
    def test_a_row_becomes_an_upsert_then_an_adjustment_without_email_by_default(self) -> None:
        migration = MigrationFile("shop", "customer_id,email,balance,lifetime_points\n", "csv")
        row = Row(2, {"customer_id": "c1", "email": "a@b.co", "balance": 9, "lifetime_points": 20})

        customer, points = migration.commands(row, send_email=False)

        prefix = migration.migration_id
        assert customer == {
            "command_id": f"{prefix}-2-customer",
            "shop_id": "shop",
            "customer_id": "c1",
            "email": "a@b.co",
        }
        assert points == {
            "command_id": f"{prefix}-2-points",
            "shop_id": "shop",
            "customer_id": "c1",
            "balance": 9,
            "lifetime_points": 20,
            "send_email": False,
            "source": "migration",
        }

    def test_ids_depend_on_the_shop_and_the_content_only(self) -> None:
        text = "customer_id,balance\nc1,5\n"

        assert (
            MigrationFile("s", text, "csv").migration_id
            == MigrationFile("s", text, "csv").migration_id
        )
        assert (
            MigrationFile("s", text, "csv").migration_id
            != MigrationFile("t", text, "csv").migration_id
        )
        assert (
            MigrationFile("s", text, "csv").migration_id
            != MigrationFile("s", text + "c2,6\n", "csv").migration_id
        )

    def test_only_good_rows_are_kept_for_applying(self) -> None:
        migration = MigrationFile("s", "customer_id,balance\nc1,5\nc2,x\nc3,7\n", "csv")

        checked = migration.check()

        assert checked.rows == 3
        assert [row.line for row in migration.valid_rows(checked.bad_lines)] == [2, 4]
