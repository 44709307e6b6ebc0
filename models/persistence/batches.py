"""The SQL of a batch of commands (one live command, a worker's micro-batch or a migration's
chunk): a few reads per shop, then each table written with one batched statement (an INSERT for
a few rows, COPY for more). Composed from the stores of what it reads and writes, at no extra
statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from sqlalchemy import Connection, bindparam, select

from models.domain.batch import BatchPlan, BatchState, WorkingAccount
from models.domain.expiry import ExpiryPolicy
from models.domain.parsing import BatchKeys, Key
from models.domain.side_effects import OutboxEntry
from models.persistence.accounts import AccountStore
from models.persistence.command_log import CommandLogStore
from models.persistence.integrations import enabled_for
from models.persistence.ledger import LedgerStore
from models.persistence.lots import LotStore
from models.persistence.outbox import OutboxStore
from models.persistence.tables import integrations, shops
from models.persistence.tiers import has_tiers

# The batch's shops, whether each has tiers, and its enabled providers (a row per provider): one
# round trip, which a batch of one command feels.
_SHOPS = (
    select(
        shops.c.id,
        shops.c.points_expire_after_days,
        shops.c.expiry_reminder_days,
        has_tiers(shops.c.id).label("has_tiers"),
        integrations.c.provider,
    )
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
        lots: LotStore,
    ) -> None:
        self._db = connection
        self._lots = lots
        self._accounts = accounts
        self._ledger = ledger
        self._command_log = command_log
        self._outbox = outbox

    def read(self, keys: BatchKeys, *, lock: bool) -> BatchState:
        """The batch's accounts (locked unless ``lock`` is false, for a dry run), stored results
        and the entries its reversals name, and the shops they belong to.

        The shops are read once the accounts are locked: a batch then sees the expiry policy
        that was in force when it got its accounts, and a policy turned on (which locks them
        all) cannot slip between the two."""
        customers_by_shop = _group(keys.customers)
        commands_by_shop = _group(keys.commands)
        shop_ids = sorted(customers_by_shop.keys() | commands_by_shop.keys())
        if not shop_ids:
            return BatchState(set(), set(), {}, {}, {})
        accounts = {
            (shop_id, account.customer_id): account
            for shop_id, customer_ids in customers_by_shop.items()
            for account in self._accounts.working(shop_id, customer_ids, lock=lock)
        }
        shops = self._shops(shop_ids)
        if shops.expiry_policies:
            self._with_lots([a for a in accounts.values() if a.shop_id in shops.expiry_policies])
        return replace(
            shops,
            accounts=accounts,
            stored={
                (shop_id, command_id): stored
                for shop_id, command_ids in commands_by_shop.items()
                for command_id, stored in self._command_log.stored(shop_id, command_ids).items()
            },
            reversible=self._ledger.reversible(keys.transactions),
        )

    def _shops(self, shop_ids: list[str]) -> BatchState:
        """What the batch needs to know of its shops, in one statement."""
        found: set[str] = set()
        with_tiers: set[str] = set()
        providers: dict[str, list[str]] = defaultdict(list)
        policies: dict[str, ExpiryPolicy] = {}
        for row in self._db.execute(_SHOPS, {"shop_ids": shop_ids}):
            found.add(row.id)
            if row.has_tiers:
                with_tiers.add(row.id)
            if row.provider is not None:
                providers[row.id].append(row.provider)
            if row.points_expire_after_days:
                policies[row.id] = ExpiryPolicy(
                    row.points_expire_after_days, row.expiry_reminder_days
                )
        return BatchState(
            shops=found,
            shops_with_tiers=with_tiers,
            providers={shop_id: sorted(names) for shop_id, names in providers.items()},
            accounts={},
            stored={},
            expiry_policies=policies,
        )

    def _with_lots(self, accounts: list[WorkingAccount]) -> None:
        """Only a batch with accounts of a shop with an expiry policy reads lots: one more
        statement, which a shop without one never pays."""
        lots = self._lots.of_accounts(account.id for account in accounts if account.id)
        for account in accounts:
            account.lots = lots.get(account.id or 0, [])

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
        self._lots.save(touched)
        if plan.reminders:
            self._lots.record_reminders(plan.reminders, plan.now)
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
