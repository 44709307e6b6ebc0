"""Email deliveries: what became of each transaction's points-earned email."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from models.persistence.tables import email_deliveries


class DeliveryStore:
    def __init__(self, connection: Connection) -> None:
        self._db = connection

    def email_status(self, transaction_id: uuid.UUID) -> str | None:
        """What became of the transaction's email: None when it was never handed to the SMTP
        server (or the server refused it), else sending, sent or unknown."""
        status = self._db.execute(
            select(email_deliveries.c.status).where(
                email_deliveries.c.transaction_id == transaction_id
            )
        ).scalar_one_or_none()
        return None if status in (None, "failed") else str(status)

    def record_hand_over(
        self,
        *,
        transaction_id: uuid.UUID,
        shop_id: str,
        account_id: int,
        recipient: str,
        message_id: str,
        now: datetime,
    ) -> None:
        """The email is about to be handed to the SMTP server: from this commit on it is never
        sent again unless the server refuses it ("failed", which a later attempt replaces).
        Writing it again changes nothing."""
        self._db.execute(
            delete(email_deliveries).where(
                email_deliveries.c.transaction_id == transaction_id,
                email_deliveries.c.status == "failed",
            )
        )
        if self.email_status(transaction_id) is not None:
            return
        self._db.execute(
            insert(email_deliveries).values(
                transaction_id=transaction_id,
                shop_id=shop_id,
                account_id=account_id,
                status="sending",
                recipient=recipient,
                message_id=message_id,
                created_at=now,
                updated_at=now,
            )
        )

    def finish_email(self, transaction_id: uuid.UUID, status: str, now: datetime) -> None:
        self._db.execute(
            update(email_deliveries)
            .where(email_deliveries.c.transaction_id == transaction_id)
            .values(status=status, updated_at=now)
        )
