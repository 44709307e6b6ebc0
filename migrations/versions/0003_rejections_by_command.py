"""Refused attempts by shop and command id, for `loyalty commands show` and migration summaries.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_rejected_messages_shop_id_command_id", "rejected_messages", ["shop_id", "command_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_rejected_messages_shop_id_command_id", table_name="rejected_messages")
