"""``loyalty migrate`` end to end: a generated 20,000-row file through a real
``celery worker -Q loyalty.migrations``, checked against the database to the point."""

from __future__ import annotations

import csv
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select

from models.persistence.tables import accounts, ledger_entries, outbox, processed_commands
from tests.support import environment
from workers.cli.main import main
from workers.process import ROOT, WorkerProcess

pytestmark = pytest.mark.e2e

ROWS = 20_000


@pytest.fixture(scope="module")
def migrations_worker(engine: Engine, broker: None) -> Iterator[WorkerProcess]:
    from workers.app import app

    log = ROOT / ".loyalty" / "worker-migrations.log"
    worker = WorkerProcess(
        "migrations",
        log,
        queues="loyalty.migrations",
        env=environment.worker_environment(),
        cwd=ROOT,
    )
    with worker.start():
        worker.wait_ready(app)
        yield worker


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, ["migrate", *args], catch_exceptions=False)


def new_shop() -> str:
    shop_id = f"merchant-{uuid.uuid4().hex[:10]}"
    assert CliRunner().invoke(main, ["shop", "create", shop_id]).exit_code == 0
    return shop_id


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    columns = [
        "customer_id", "email", "phone", "first_name", "last_name", "balance",
        "lifetime_points", "note",
    ]  # fmt: skip
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def generated_rows(count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for n in range(count):
        balance = rng.randint(0, 40_000)
        rows.append(
            {
                "customer_id": f"c{n:06d}",
                "email": f"c{n}@example.com" if n % 3 else "",
                "phone": f"+1 555 {n:07d}" if n % 5 == 0 else "",
                "first_name": f"First{n}",
                "last_name": "",
                "balance": balance,
                "lifetime_points": balance + rng.randint(0, 9_000) if n % 2 else "",
                "note": "Migrated from Smile" if n % 4 else "",
            }
        )
    return rows


def books(engine: Engine, shop_id: str) -> dict[str, tuple[int, int, str | None]]:
    with engine.connect() as db:
        return {
            row.customer_id: (row.balance, row.lifetime, row.email)
            for row in db.execute(
                select(
                    accounts.c.customer_id,
                    accounts.c.balance,
                    accounts.c.lifetime,
                    accounts.c.email,
                ).where(accounts.c.shop_id == shop_id)
            )
        }


def count(engine: Engine, table: object, shop_id: str) -> int:
    with engine.connect() as db:
        return int(
            db.execute(
                select(func.count()).select_from(table).where(table.c.shop_id == shop_id)  # type: ignore[attr-defined]
            ).scalar_one()
        )


def test_a_merchant_file_is_applied_exactly_once(
    migrations_worker: WorkerProcess, engine: Engine, tmp_path: Path
) -> None:
    shop_id = new_shop()
    rows = generated_rows(ROWS, seed=7)
    path = write_csv(tmp_path / "merchant.csv", rows)

    dry = migrate(shop_id, str(path), "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert f"create {ROWS:,} customers" in dry.output
    assert f"{sum(int(r['balance']) for r in rows):,} after" in dry.output
    assert books(engine, shop_id) == {}
    assert count(engine, processed_commands, shop_id) == 0

    first = migrate(shop_id, str(path))

    assert first.exit_code == 0, first.output
    assert f"Applied {ROWS:,} balances ({ROWS:,} customers created)" in first.output
    expected = {
        str(r["customer_id"]): (
            int(r["balance"]),
            int(r["lifetime_points"] or r["balance"]),  # lifetime moves with the balance
            str(r["email"]) or None,
        )
        for r in rows
    }
    assert books(engine, shop_id) == expected
    assert count(engine, ledger_entries, shop_id) == ROWS
    assert count(engine, processed_commands, shop_id) == 2 * ROWS
    assert count(engine, outbox, shop_id) == 0  # emails are off, no tiers, no integrations

    again = migrate(shop_id, str(path))

    assert again.exit_code == 0, again.output
    assert f"Applied 0 balances (0 customers created), {ROWS:,} already applied" in again.output
    assert books(engine, shop_id) == expected
    assert count(engine, ledger_entries, shop_id) == ROWS


def test_a_file_with_bad_rows_is_refused_with_every_bad_line_reported(
    migrations_worker: WorkerProcess, engine: Engine, tmp_path: Path
) -> None:
    shop_id = new_shop()
    rows = generated_rows(50, seed=3)
    bad = {
        5: ("balance", "-3"),
        9: ("email", "not-an-email"),
        17: ("customer_id", ""),
        30: ("lifetime_points", "lots"),
    }
    for index, (column, value) in bad.items():
        rows[index][column] = value
    rows[40]["customer_id"] = rows[41]["customer_id"]
    path = write_csv(tmp_path / "merchant.csv", rows)

    refused = migrate(shop_id, str(path))

    assert refused.exit_code == 1
    assert "Nothing was applied" in refused.output
    assert count(engine, processed_commands, shop_id) == 0
    with (tmp_path / "merchant.csv.errors.csv").open() as errors:
        reported = {(int(row["line"]), row["field"]) for row in csv.DictReader(errors)}
    # Line 1 is the header: row i is on line i + 2.
    assert reported == {(index + 2, column) for index, (column, _) in bad.items()} | {
        (43, "customer_id")
    }

    skipped = migrate(shop_id, str(path), "--skip-invalid")

    assert skipped.exit_code == 0, skipped.output
    assert count(engine, ledger_entries, shop_id) == 50 - 5


def test_json_lines_with_adjustments_and_an_opt_in_email(
    migrations_worker: WorkerProcess, engine: Engine, tmp_path: Path
) -> None:
    shop_id = new_shop()
    path = tmp_path / "merchant.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(record)
            for record in [
                {"customer_id": "a", "email": "a@example.com", "adjustment": 120},
                {"customer_id": "b", "adjustment": -5, "note": None},
                {"customer_id": "c", "email": "", "balance": 0, "lifetime_points": 800},
            ]
        )
    )

    result = migrate(shop_id, str(path), "--send-email")

    assert result.exit_code == 0, result.output
    assert books(engine, shop_id) == {
        "a": (120, 120, "a@example.com"),
        "b": (0, 0, None),
        "c": (0, 800, None),
    }
    with engine.connect() as db:
        owed = db.execute(select(outbox.c.task_name).where(outbox.c.shop_id == shop_id)).scalars()
        assert list(owed) == ["loyalty.send_points_earned_email"]
