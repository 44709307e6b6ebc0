"""Accounts: one read shape (the account with its tier) for every reader, the batch's locking
lookup and set-based writes, and the locking read a tier recalculation starts from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, update

from models.domain.adjustments import Points
from models.domain.batch import WorkingAccount
from models.persistence.set_based import EACH_KEY, insert_rows, lookup_keys
from models.persistence.tables import accounts, point_lots, shops, tiers

WITH_TIER = accounts.outerjoin(tiers, tiers.c.id == accounts.c.tier_id)
"""Every account read: the account and, when it has one, its tier."""
TIER_COLUMNS = (tiers.c.name.label("tier_name"), tiers.c.threshold.label("tier_threshold"))


def _next_lot(column: Any) -> Any:
    return (
        select(column)
        .where(point_lots.c.account_id == accounts.c.id)
        .order_by(point_lots.c.expires_at)
        .limit(1)
        .scalar_subquery()
    )


NEXT_EXPIRATION_COLUMNS = (
    _next_lot(point_lots.c.expires_at).label("next_expiration"),
    _next_lot(point_lots.c.points).label("next_expiring_points"),
)
"""The account's next lot to expire (null in a shop without an expiry policy)."""

_CUSTOMER_FIELDS = ("email", "phone", "first_name", "last_name", "excluded")
_POINT_FIELDS = ("balance", "lifetime", "earned", "redeemed", "adjusted", "expired", "revision")
_WORKING_COLUMNS = (
    "id",
    "shop_id",
    "customer_id",
    *_POINT_FIELDS,
    "excluded",
    "email",
    "phone",
    "first_name",
    "last_name",
    "last_activity_at",
)

_WORKING = (
    select(*(accounts.c[name] for name in _WORKING_COLUMNS), *TIER_COLUMNS)
    .select_from(WITH_TIER)
    .where(
        accounts.c.shop_id == bindparam("shop_id"),
        accounts.c.customer_id.in_(bindparam("keys", expanding=True)),
    )
    .order_by(accounts.c.customer_id)
)
_PG_WORKING = f"""
    SELECT a.id, a.shop_id, a.customer_id, a.balance, a.lifetime, a.earned, a.redeemed,
           a.adjusted, a.expired, a.revision, a.excluded, a.email, a.phone, a.first_name,
           a.last_name, a.last_activity_at, t.name AS tier_name, t.threshold AS tier_threshold
      {EACH_KEY} (SELECT * FROM accounts
                    WHERE shop_id = :shop_id AND customer_id = wanted.key LIMIT 1 {{lock}}) AS a
      LEFT JOIN tiers AS t ON t.id = a.tier_id
"""
# Sorted keys, so locks are taken in one order and two batches sharing accounts cannot deadlock.
_LOOKUPS = {
    False: (text(_PG_WORKING.format(lock="")), _WORKING),
    True: (text(_PG_WORKING.format(lock="FOR UPDATE")), _WORKING.with_for_update(of=accounts)),
}

_UPDATE_ACCOUNT = (
    update(accounts)
    .where(accounts.c.id == bindparam("account_id"))
    .values(
        {name: bindparam(name) for name in (*_CUSTOMER_FIELDS, *_POINT_FIELDS)}
        | {"last_activity_at": bindparam("last_activity_at"), "updated_at": bindparam("now")}
    )
)


@dataclass(frozen=True, slots=True)
class AccountForTier:
    id: int
    lifetime: int
    revision: int
    tier_id: int | None
    tier_name: str | None


class AccountStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def account_id(self, shop_id: str, customer_id: str) -> int | None:
        account_id: int | None = self._db.execute(
            select(accounts.c.id).where(
                accounts.c.shop_id == shop_id, accounts.c.customer_id == customer_id
            )
        ).scalar_one_or_none()
        return account_id

    def summary(self, shop_id: str, customer_id: str) -> Any:
        """The account with its tier, as the support tools show it."""
        return self._db.execute(
            select(accounts, *TIER_COLUMNS, *NEXT_EXPIRATION_COLUMNS)
            .select_from(WITH_TIER)
            .where(accounts.c.shop_id == shop_id, accounts.c.customer_id == customer_id)
        ).one_or_none()

    def with_shop(self, account_id: int) -> Any:
        """The account with its tier and its shop's name and sender, as syncs and emails use
        it."""
        return self._db.execute(
            select(
                accounts,
                *TIER_COLUMNS,
                *NEXT_EXPIRATION_COLUMNS,
                shops.c.name.label("shop_name"),
                shops.c.email_from,
            )
            .select_from(WITH_TIER.join(shops, shops.c.id == accounts.c.shop_id))
            .where(accounts.c.id == account_id)
        ).one_or_none()

    def working(self, shop_id: str, customer_ids: list[str], *, lock: bool) -> list[WorkingAccount]:
        """The batch's accounts of one shop (locked unless ``lock`` is false), one statement."""
        postgresql, portable = _LOOKUPS[lock]
        rows = lookup_keys(self._db, postgresql, portable, shop_id, customer_ids)
        return [_working_account(row) for row in rows]

    def create_many(self, new: Sequence[WorkingAccount], now: datetime) -> None:
        """Inserts the accounts in one statement and gives each its id."""
        ids = insert_rows(
            self._db,
            accounts,
            [
                _account_values(account)
                | {
                    "shop_id": account.shop_id,
                    "customer_id": account.customer_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for account in new
            ],
        )
        for account, account_id in zip(new, ids, strict=True):
            account.id = account_id

    def update_many(self, changed: Sequence[WorkingAccount], now: datetime) -> None:
        if changed:
            self._db.execute(
                _UPDATE_ACCOUNT,
                [
                    _account_values(account) | {"account_id": account.id, "now": now}
                    for account in changed
                ],
            )

    def lock_shop(self, shop_id: str) -> None:
        """Every account of the shop, for a change to all their balances' bookkeeping (the expiry
        policy turned on or off); in the batches' order (by customer id), so neither can
        deadlock the other."""
        self._db.execute(
            select(accounts.c.id)
            .where(accounts.c.shop_id == shop_id)
            .order_by(accounts.c.customer_id)
            .with_for_update()
        ).all()

    def lock_for_tier(
        self, shop_id: str, *, account_id: int | None = None, after_id: int = 0, limit: int = 1
    ) -> list[AccountForTier]:
        """Lock first, then read: a locking read that waited for another transaction sees that
        transaction's account row, but (in READ COMMITTED) still the tier row it joined before
        waiting, so a tier changed meanwhile would be recorded with a stale "from"."""
        lock = (
            select(accounts.c.id)
            .where(accounts.c.shop_id == shop_id, accounts.c.id > after_id)
            .order_by(accounts.c.id)
            .limit(limit)
            .with_for_update()
        )
        if account_id is not None:
            lock = lock.where(accounts.c.id == account_id)
        locked = list(self._db.execute(lock).scalars())
        if not locked:
            return []
        read = (
            select(
                accounts.c.id,
                accounts.c.lifetime,
                accounts.c.revision,
                accounts.c.tier_id,
                tiers.c.name,
            )
            .select_from(WITH_TIER)
            .where(accounts.c.id.in_(locked))
            .order_by(accounts.c.id)
        )
        return [AccountForTier(*row) for row in self._db.execute(read)]


def _working_account(row: Any) -> WorkingAccount:
    return WorkingAccount(
        id=row.id,
        shop_id=row.shop_id,
        customer_id=row.customer_id,
        points=Points(*(getattr(row, name) for name in _POINT_FIELDS)),
        excluded=row.excluded,
        email=row.email,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        tier=None if row.tier_name is None else (row.tier_name, row.tier_threshold),
        last_activity_at=row.last_activity_at,
    )


def _account_values(account: WorkingAccount) -> dict[str, Any]:
    points = account.points
    return {
        "email": account.email,
        "phone": account.phone,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "excluded": account.excluded,
        "balance": points.balance,
        "lifetime": points.lifetime,
        "earned": points.earned,
        "redeemed": points.redeemed,
        "adjusted": points.adjusted,
        "expired": points.expired,
        "revision": points.revision,
        "last_activity_at": account.last_activity_at,
    }
