"""The migration use case: chunks planned from a checked file, published through an injected
sender, watched and summed up; the dry run plans with the bulk task's rules and changes nothing."""

from __future__ import annotations

from collections import Counter

from models.domain.commands import ADJUST_POINTS, UPSERT_CUSTOMER
from models.domain.migration import MigrationFile
from models.persistence.command_log import Outcome
from models.persistence.unit_of_work import UnitOfWork
from models.services import command_engine
from models.services import migration as service
from tests.support.factories import create_shop

FILE = (
    "customer_id,email,balance,lifetime_points\n"
    "ada,ada@example.com,100,150\n"
    "bob,not-an-email,5,\n"
    "cy,,0,\n"
    "dee,,70,\n"
    "eve,,30,40\n"
)


def planned(migration: MigrationFile, rows_per_chunk: int = 2) -> list[service.Chunk]:
    checked = migration.check()
    return list(
        service.chunks(
            migration, checked.bad_lines, rows_per_chunk=rows_per_chunk, send_email=False
        )
    )


def apply_as_the_bulk_task(uow: UnitOfWork) -> service.SendChunk:
    def send_chunk(chunk: service.Chunk) -> None:
        command_engine.adjust_points_bulk(uow, chunk.items, max_commands=1000)

    return send_chunk


class TestChunks:
    def test_good_rows_become_a_customer_then_its_points_in_file_order(self) -> None:
        chunks = planned(MigrationFile("shop", FILE, "csv"))

        assert [(c.first_line, c.last_line, c.rows) for c in chunks] == [(2, 4, 2), (5, 6, 2)]
        first = chunks[0].items
        assert list(first[0]) == [UPSERT_CUSTOMER]
        assert first[0][UPSERT_CUSTOMER]["customer_id"] == "ada"
        assert first[1]["customer_id"] == "ada"
        assert chunks[0].last_command_id == first[-1]["command_id"]

    def test_a_chunk_describes_itself_without_the_commands(self) -> None:
        chunk = planned(MigrationFile("shop", FILE, "csv"))[0]

        assert chunk.describe() == "[<4 commands: lines 2-4>]"
        assert "ada@example.com" not in chunk.describe()


class TestEnqueue:
    def test_every_chunk_is_sent_once_and_counted_as_pending(self) -> None:
        chunks = planned(MigrationFile("shop", FILE, "csv"))
        sent: list[service.Chunk] = []
        progress: list[int] = []

        pending = service.enqueue(iter(chunks), sent.append, progress.append)

        assert sent == chunks
        assert progress == [2, 2]
        assert pending == [service.Pending(c.last_command_id, c.rows) for c in chunks]

    def test_still_pending_leaves_out_the_applied_chunks(self) -> None:
        pending = [service.Pending("a", 2), service.Pending("b", 3), service.Pending("c", 1)]

        assert service.still_pending(pending, [pending[1]]) == [pending[0], pending[2]]


class TestSummary:
    def test_only_what_this_run_changed_is_counted(self) -> None:
        before: Counter[Outcome] = Counter({(ADJUST_POINTS, "applied", None, False): 3})
        after = before + Counter(
            {
                (ADJUST_POINTS, "applied", None, False): 4,
                (UPSERT_CUSTOMER, "applied", None, True): 2,
                (UPSERT_CUSTOMER, "applied", None, False): 2,
                (ADJUST_POINTS, "rejected", "customer_excluded", False): 1,
            }
        )

        summary = service.Summary.between(before, after)

        assert (summary.applied, summary.customers_created, summary.already_applied) == (4, 2, 3)
        assert summary.rejected == Counter({"customer_excluded": 1})


class TestAgainstTheDatabase:
    def test_a_dry_run_changes_nothing_and_counts_what_would_change(
        self, uow: UnitOfWork, shop_id: str
    ) -> None:
        create_shop(uow, shop_id)
        migration = MigrationFile(shop_id, FILE, "csv")

        report = service.dry_run(uow, iter(planned(migration)), sample=2)

        assert (report.customers_created, report.customers_updated) == (4, 0)
        assert (report.points_before, report.points_after) == (0, 200)
        assert report.balances_changed == 3  # cy's balance stays 0
        assert report.changes == [
            "ada: balance 0 -> 100, lifetime points 150",
            "cy: balance 0 -> 0, lifetime points 0",
        ]
        assert service.outcomes(uow, migration) == Counter()

    def test_applied_chunks_are_found_and_the_summary_adds_up(
        self, uow: UnitOfWork, shop_id: str
    ) -> None:
        create_shop(uow, shop_id)
        migration = MigrationFile(shop_id, FILE, "csv")
        chunks = planned(migration)
        before = service.outcomes(uow, migration)

        pending = service.enqueue(iter(chunks[:1]), apply_as_the_bulk_task(uow), lambda _: None)
        unsent = [service.Pending(chunks[1].last_command_id, chunks[1].rows)]
        done = service.applied_chunks(uow, shop_id, pending + unsent)

        assert done == pending
        summary = service.Summary.between(before, service.outcomes(uow, migration))
        assert (summary.applied, summary.customers_created) == (2, 2)

    def test_a_second_run_finds_every_row_already_applied(
        self, uow: UnitOfWork, shop_id: str
    ) -> None:
        create_shop(uow, shop_id)
        migration = MigrationFile(shop_id, FILE, "csv")
        service.enqueue(iter(planned(migration)), apply_as_the_bulk_task(uow), lambda _: None)

        report = service.dry_run(uow, iter(planned(migration)), sample=2)

        assert report.already_applied == 4
        assert (report.customers_created, report.balances_changed) == (0, 0)
