"""Reversals: a ledger entry says what wrote it, and a reversal links the entry it reverses.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LINKED = sa.text("reverses_transaction_id IS NOT NULL")


def upgrade() -> None:
    op.add_column(
        "ledger_entries",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="adjust"),
    )
    op.add_column("ledger_entries", sa.Column("reverses_transaction_id", sa.Uuid(), nullable=True))
    op.create_index(
        op.f("ix_ledger_entries_reverses_transaction_id"),
        "ledger_entries",
        ["reverses_transaction_id"],
        postgresql_where=_LINKED,
        sqlite_where=_LINKED,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_entries_reverses_transaction_id"), "ledger_entries")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("reverses_transaction_id")
        batch.drop_column("kind")
