"""``loyalty.upsert_customer`` against PostgreSQL, each test in a rolled-back transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from models.domain.names import sync_task_name
from models.persistence.tables import outbox
from models.persistence.unit_of_work import UnitOfWork
from tasks.live_commands import upsert_customer
from tests.support.factories import account_row, create_shop


def upsert(shop_id: str, customer_id: str = "c-1", **fields: Any) -> dict[str, Any]:
    return {
        "command_id": str(uuid.uuid4()),
        "shop_id": shop_id,
        "customer_id": customer_id,
        **fields,
    }


class TestUpsertCustomer:
    def test_creates_then_updates_only_the_given_fields(
        self, uow: UnitOfWork, connection: Connection, shop_id: str
    ) -> None:
        create_shop(uow, shop_id)

        created = upsert_customer(upsert(shop_id, email="ada@example.com", first_name="Ada"))
        updated = upsert_customer(upsert(shop_id, phone="+44 20 7946 0000"))

        assert created["status"] == "applied"
        assert created["created"] is True
        assert updated["created"] is False
        assert updated["customer"] == {
            "customer_id": "c-1",
            "email": "ada@example.com",
            "phone": "+44 20 7946 0000",
            "first_name": "Ada",
            "last_name": None,
            "excluded": False,
        }
        row = account_row(connection, shop_id, "c-1")
        assert (row.balance, row.revision, row.excluded) == (0, 0, False)

    def test_is_idempotent_per_command_id(self, uow: UnitOfWork, shop_id: str) -> None:
        create_shop(uow, shop_id)
        command = upsert(shop_id, email="ada@example.com")

        first = upsert_customer(command)

        assert upsert_customer(command) == first
        conflict = upsert_customer(command | {"email": "eve@example.com"})
        assert conflict["error"]["code"] == "idempotency_conflict"

    def test_unknown_shop_is_rejected(self) -> None:
        result = upsert_customer(upsert(f"missing-{uuid.uuid4()}"))

        assert result["error"]["code"] == "unknown_shop"
        assert result["error"]["http_status"] == 404

    def test_bad_fields_are_named(self, uow: UnitOfWork, shop_id: str) -> None:
        create_shop(uow, shop_id)

        result = upsert_customer(upsert(shop_id, email="not-an-email", excluded="yes"))

        fields = {e["field"] for e in result["error"]["details"]["errors"]}
        assert result["error"]["code"] == "invalid_command"
        assert fields == {"email", "excluded"}


class TestProfileChangesOweTheSyncs:
    """A new email, phone or name must reach the providers without waiting for the next points
    change; nothing else about a customer is on a provider's profile."""

    @staticmethod
    def owed(connection: Connection, shop_id: str) -> list[tuple[str, int | None]]:
        rows = connection.execute(
            select(outbox.c.task_name, outbox.c.revision)
            .where(outbox.c.shop_id == shop_id)
            .order_by(outbox.c.id)
        )
        return [(row.task_name, row.revision) for row in rows]

    def test_each_change_of_the_profile_owes_each_enabled_provider_a_sync(
        self, uow: UnitOfWork, connection: Connection, shop_id: str
    ) -> None:
        create_shop(uow, shop_id)
        with uow:
            for provider in ("klaviyo", "postscript"):
                uow.integrations.enable(shop_id, provider, "token", "…1234", datetime.now(UTC))
            uow.integrations.enable(shop_id, "omnisend", "token", "…1234", datetime.now(UTC))
            uow.integrations.disable(shop_id, "omnisend", datetime.now(UTC))
            uow.commit()
        syncs = [(sync_task_name("klaviyo"), 0), (sync_task_name("postscript"), 0)]

        upsert_customer(upsert(shop_id, email="ada@example.com"))
        upsert_customer(upsert(shop_id, email="ada@example.com", excluded=True))
        upsert_customer(upsert(shop_id, phone="+44 20 7946 0000", first_name="Ada"))
        upsert_customer(upsert(shop_id, last_name="Lovelace"))

        assert self.owed(connection, shop_id) == syncs * 3

    def test_a_shop_without_providers_owes_nothing(
        self, uow: UnitOfWork, connection: Connection, shop_id: str
    ) -> None:
        create_shop(uow, shop_id)

        upsert_customer(upsert(shop_id, email="ada@example.com"))

        assert self.owed(connection, shop_id) == []
