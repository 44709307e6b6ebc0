"""Outbox waits live on the row, not in the broker: the time the relay publishes it again, and
how far a shop-wide task got before it handed over to its next run.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("resume_after", sa.BigInteger()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("resume_after")
        batch.drop_column("next_attempt_at")
