"""Lots: the points of accounts in shops with an expiry policy, by the moment they expire. Read
with the accounts they belong to (under their locks), written set-based with the batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, exists, insert, or_, select, update

from models.domain.batch import ReminderRow, WorkingAccount
from models.domain.clock import as_utc
from models.domain.expiry import Lot
from models.persistence.set_based import insert_rows
from models.persistence.tables import accounts, expiry_reminders, point_lots


@dataclass(frozen=True, slots=True)
class Reminder:
    id: uuid.UUID
    account_id: int
    shop_id: str
    expires_at: datetime
    points: int
    created_at: datetime


_ALREADY_REMINDED = exists().where(
    expiry_reminders.c.account_id == point_lots.c.account_id,
    expiry_reminders.c.expires_at == point_lots.c.expires_at,
)

_OF_ACCOUNTS = (
    select(point_lots.c.id, point_lots.c.account_id, point_lots.c.expires_at, point_lots.c.points)
    .where(point_lots.c.account_id.in_(bindparam("account_ids", expanding=True)))
    .order_by(point_lots.c.account_id, point_lots.c.expires_at)
)
_UPDATE = (
    update(point_lots)
    .where(point_lots.c.id == bindparam("lot_id"))
    .values(points=bindparam("points"))
)
_DELETE = delete(point_lots).where(point_lots.c.id.in_(bindparam("lot_ids", expanding=True)))


class LotStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def of_accounts(self, account_ids: Iterable[int]) -> dict[int, list[Lot]]:
        """Each account's lots, soonest to expire first (every account named has a list)."""
        ids = sorted(set(account_ids))
        lots: dict[int, list[Lot]] = {account_id: [] for account_id in ids}
        if ids:
            for row in self._db.execute(_OF_ACCOUNTS, {"account_ids": ids}):
                lots[row.account_id].append(Lot(as_utc(row.expires_at), row.points, row.id))
        return lots

    def due(
        self, shop_id: str, *, as_of: datetime, remind_until: datetime, after_id: int, limit: int
    ) -> list[tuple[int, str]]:
        """(id, customer id) of the shop's next accounts, by id, with lots expired as of
        ``as_of`` or due a reminder (expiring by ``remind_until``, not reminded yet)."""
        query = (
            select(accounts.c.id, accounts.c.customer_id)
            .distinct()
            .select_from(point_lots.join(accounts, accounts.c.id == point_lots.c.account_id))
            .where(
                point_lots.c.shop_id == shop_id,
                accounts.c.id > after_id,
                or_(
                    point_lots.c.expires_at <= as_of,
                    and_(point_lots.c.expires_at <= remind_until, ~_ALREADY_REMINDED),
                ),
            )
            .order_by(accounts.c.id)
            .limit(limit)
        )
        return [(row.id, row.customer_id) for row in self._db.execute(query)]

    def reminded(self, account_ids: Iterable[int], after: datetime) -> set[tuple[int, datetime]]:
        """(account id, expiry moment) of the accounts' reminders recorded already for lots
        that expire after ``after`` (older ones can never be due again)."""
        query = select(expiry_reminders.c.account_id, expiry_reminders.c.expires_at).where(
            expiry_reminders.c.account_id.in_(sorted(set(account_ids))),
            expiry_reminders.c.expires_at > after,
        )
        return {(row.account_id, as_utc(row.expires_at)) for row in self._db.execute(query)}

    def record_reminders(self, reminders: Sequence[ReminderRow], now: datetime) -> None:
        insert_rows(
            self._db,
            expiry_reminders,
            [
                {
                    "id": reminder.id,
                    "account_id": reminder.account.id,
                    "shop_id": reminder.account.shop_id,
                    "expires_at": reminder.expires_at,
                    "points": reminder.points,
                    "created_at": now,
                }
                for reminder in reminders
            ],
        )

    def reminder(self, reminder_id: uuid.UUID) -> Reminder | None:
        row = self._db.execute(
            select(expiry_reminders).where(expiry_reminders.c.id == reminder_id)
        ).one_or_none()
        if row is None:
            return None
        return Reminder(
            row.id, row.account_id, row.shop_id, as_utc(row.expires_at), row.points, row.created_at
        )

    def points_expiring_at(self, account_id: int, expires_at: datetime) -> int:
        """What is left of the account's lot that expires at ``expires_at``."""
        points: int | None = self._db.execute(
            select(point_lots.c.points).where(
                point_lots.c.account_id == account_id, point_lots.c.expires_at == expires_at
            )
        ).scalar_one_or_none()
        return points or 0

    def save(self, touched: Sequence[WorkingAccount]) -> None:
        """The changed lots of the accounts: new ones inserted, used-up ones deleted, the rest
        updated; at most three statements for a whole batch, none when no lot changed (a shop
        without an expiry policy has none)."""
        new, changed, emptied = [], [], []
        for account in touched:
            for lot in account.lots or ():
                if not lot.changed:
                    continue
                if lot.id is None:
                    if lot.points:
                        new.append(
                            {
                                "account_id": account.id,
                                "shop_id": account.shop_id,
                                "expires_at": lot.expires_at,
                                "points": lot.points,
                            }
                        )
                elif lot.points:
                    changed.append({"lot_id": lot.id, "points": lot.points})
                else:
                    emptied.append(lot.id)
                lot.changed = False
        if emptied:
            self._db.execute(_DELETE, {"lot_ids": emptied})
        if changed:
            self._db.execute(_UPDATE, changed)
        insert_rows(self._db, point_lots, new)

    def open_for_shop(self, shop_id: str, expires_at: datetime) -> None:
        """The policy was turned on: each account's whole balance becomes one lot."""
        self.drop_for_shop(shop_id)
        chosen = select(
            accounts.c.id, accounts.c.shop_id, bindparam("expires_at"), accounts.c.balance
        ).where(accounts.c.shop_id == shop_id, accounts.c.balance > 0)
        self._db.execute(
            insert(point_lots).from_select(
                ["account_id", "shop_id", "expires_at", "points"], chosen
            ),
            {"expires_at": expires_at},
        )

    def drop_for_shop(self, shop_id: str) -> None:
        """The policy was turned off: points no longer expire."""
        self._db.execute(delete(point_lots).where(point_lots.c.shop_id == shop_id))
