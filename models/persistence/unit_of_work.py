"""One unit of work, one transaction: commit is explicit and anything else rolls back.

Side effects owed by the transaction are written to the outbox inside it, and once it commits the
unit of work publishes them itself, through the ``publish`` function it was given (the worker's
broker; ``workers.app`` wires it). A rolled-back transaction owes nothing. Without a publisher, or
when publishing fails, the relay publishes the rows: it is the guarantee, this is the fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models.domain.side_effects import OutboxEntry
from models.persistence.accounts import AccountStore
from models.persistence.batches import BatchStore
from models.persistence.command_log import CommandLogStore
from models.persistence.deliveries import DeliveryStore
from models.persistence.integrations import IntegrationStore
from models.persistence.ledger import LedgerStore
from models.persistence.lots import LotStore
from models.persistence.outbox import OutboxStore
from models.persistence.shops import ShopStore
from models.persistence.tiers import TierStore

Publish = Callable[[Sequence[OutboxEntry]], None]


StoreT = TypeVar("StoreT")


class UnitOfWork:
    """The stores, each named for what it holds, share the transaction's connection; each is
    made when first used in the transaction."""

    def __init__(
        self, session_factory: Callable[[], Session], publish: Publish | None = None
    ) -> None:
        self._session_factory = session_factory
        self._publish = publish
        self._owed: list[OutboxEntry] = []
        self._stores: dict[type[Any], Any] = {}

    def __enter__(self) -> Self:
        self._session = self._session_factory()
        self._connection = self._session.connection()
        self._stores = {}
        self._owed = []
        return self

    def _store(
        self, kind: type[StoreT], make: Callable[[Connection], StoreT] | None = None
    ) -> StoreT:
        store = self._stores.get(kind)
        if store is None:
            build = make or cast(Callable[[Connection], StoreT], kind)
            store = self._stores[kind] = build(self._connection)
        return cast(StoreT, store)

    @property
    def shops(self) -> ShopStore:
        return self._store(ShopStore)

    @property
    def accounts(self) -> AccountStore:
        return self._store(AccountStore)

    @property
    def ledger(self) -> LedgerStore:
        return self._store(LedgerStore)

    @property
    def lots(self) -> LotStore:
        return self._store(LotStore)

    @property
    def command_log(self) -> CommandLogStore:
        return self._store(CommandLogStore)

    @property
    def outbox(self) -> OutboxStore:
        return self._store(OutboxStore)

    @property
    def tiers(self) -> TierStore:
        return self._store(TierStore)

    @property
    def integrations(self) -> IntegrationStore:
        return self._store(IntegrationStore)

    @property
    def deliveries(self) -> DeliveryStore:
        return self._store(DeliveryStore)

    @property
    def batches(self) -> BatchStore:
        """A whole batch's read and write, through the stores of what it touches."""
        return self._store(
            BatchStore,
            lambda connection: BatchStore(
                connection,
                accounts=self.accounts,
                ledger=self.ledger,
                command_log=self.command_log,
                outbox=self.outbox,
                lots=self.lots,
            ),
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._owed = []
        self._session.rollback()
        self._session.close()

    def owe(self, entries: list[OutboxEntry]) -> None:
        self._owed.extend(entries)

    def commit(self) -> None:
        self._session.commit()
        owed, self._owed = self._owed, []
        if owed and self._publish is not None:
            self._publish(owed)

    def commit_overlapping(self, action: Callable[[], None]) -> None:
        """Commit, running ``action`` as soon as the COMMIT has left for the server, before its
        reply.

        For a record that must be durable before something irreversible happens outside: a
        process killed between the commit and the action leaves the two disagreeing for the
        few microseconds between two writes, instead of for a commit's round trip and WAL
        flush. The commit's error, if any, is raised after ``action`` ran. On SQLite, or inside
        an outer transaction (the tests' savepoints), it is a plain commit, then ``action``.
        """
        self._session.flush()
        connection = self._session.connection()
        driver = connection.connection.driver_connection
        if connection.in_nested_transaction() or not isinstance(driver, psycopg.Connection):
            self.commit()
            action()
            return
        try:
            with driver.pipeline():  # sends each statement at once, waits for replies at the end
                driver.execute("COMMIT")
                action()
        except psycopg.Error as error:
            raise DBAPIError.instance("COMMIT", None, error, psycopg.Error) from error
        self.commit()  # the driver is idle already: this is the session's bookkeeping
