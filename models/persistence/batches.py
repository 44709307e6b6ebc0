"""The SQL of a batch of commands (one live command, a worker's micro-batch or a migration's
chunk): a few reads per shop, then each table written with one batched statement (an INSERT for
a few rows, COPY for more). Composed from the stores of what it reads and writes, at no extra
statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, select

from models.domain.batch import BatchPlan, BatchState
from models.domain.parsing import BatchKeys, Key
from models.domain.side_effects import OutboxEntry
from models.persistence.accounts import AccountStore
from models.persistence.command_log import CommandLogStore
from models.persistence.integrations import enabled_for
from models.persistence.ledger import LedgerStore
from models.persistence.outbox import OutboxStore
from models.persistence.tables import integrations, shops
from models.persistence.tiers import has_tiers

# The batch's shops, whether each has tiers, and its enabled providers (a row per provider): one
# round trip, which a batch of one command feels.
_SHOPS = (
    select(shops.c.id, has_tiers(shops.c.id).label("has_tiers"), integrations.c.provider)
    .select_from(shops.outerjoin(integrations, enabled_for(shops.c.id)))
    .where(shops.c.id.in_(bindparam("shop_ids", expanding=True)))
)


class BatchStore:
    def __init__(
        self,
        connection: Connection,
        *,
        accounts: AccountStore,
        ledger: LedgerStore,
        command_log: CommandLogStore,
        outbox: OutboxStore,
    ) -> None:
        self._db = connection
        self._accounts = accounts
        self._ledger = ledger
        self._command_log = command_log
        self._outbox = outbox

    def read(self, keys: BatchKeys, *, lock: bool) -> BatchState:
        """The batch's accounts (locked unless ``lock`` is false, for a dry run), stored results
        and the entries its reversals name, and the shops they belong to."""
        customers_by_shop = _group(keys.customers)
        commands_by_shop = _group(keys.commands)
        shop_ids = sorted(customers_by_shop.keys() | commands_by_shop.keys())
        if not shop_ids:
            return BatchState(set(), set(), {}, {}, {})
        found: set[str] = set()
        with_tiers: set[str] = set()
        providers: dict[str, list[str]] = defaultdict(list)
        for row in self._db.execute(_SHOPS, {"shop_ids": shop_ids}):
            found.add(row.id)
            if row.has_tiers:
                with_tiers.add(row.id)
            if row.provider is not None:
                providers[row.id].append(row.provider)
        accounts = {
            (shop_id, account.customer_id): account
            for shop_id, customer_ids in customers_by_shop.items()
            for account in self._accounts.working(shop_id, customer_ids, lock=lock)
        }
        return BatchState(
            shops=found,
            shops_with_tiers=with_tiers,
            providers={shop_id: sorted(names) for shop_id, names in providers.items()},
            accounts=accounts,
            stored={
                (shop_id, command_id): stored
                for shop_id, command_ids in commands_by_shop.items()
                for command_id, stored in self._command_log.stored(shop_id, command_ids).items()
            },
            reversible=self._ledger.reversible(keys.transactions),
        )

    def write(self, plan: BatchPlan) -> list[OutboxEntry]:
        """Write the plan; returns the outbox rows to publish once the transaction commits."""
        touched = plan.touched_accounts()
        self._accounts.create_many([account for account in touched if account.id is None], plan.now)
        self._accounts.update_many(
            [account for account in touched if not account.created], plan.now
        )
        self._ledger.append_many(
            [row.values | {"account_id": row.account.id} for row in plan.ledger]
        )
        self._command_log.record_many(plan.processed, plan.rejected_messages)
        return self._outbox.owe_many(
            [
                {
                    "task_name": owed.task_name,
                    "shop_id": owed.account.shop_id,
                    "account_id": owed.account.id,
                    "transaction_id": owed.transaction_id,
                    "revision": owed.revision,
                    "created_at": plan.now,
                }
                for owed in plan.side_effects
            ]
        )


def _group(keys: Iterable[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for shop_id, value in keys:
        grouped[shop_id].append(value)
    return {shop_id: sorted(values) for shop_id, values in grouped.items()}
