"""Expiry: a shop's expiry policy, the lots of points that expire, the reminders sent before they
do, and an account's expired points in its breakdown.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BREAKDOWN = op.f("ck_accounts_breakdown_adds_up")


def upgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.add_column(
            sa.Column("points_expire_after_days", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("expiry_reminder_days", sa.Integer(), nullable=False, server_default="14")
        )
        batch.create_check_constraint(
            op.f("ck_shops_expiry_not_negative"), "points_expire_after_days >= 0"
        )
        batch.create_check_constraint(
            op.f("ck_shops_reminder_not_negative"), "expiry_reminder_days >= 0"
        )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("expired", sa.BigInteger(), nullable=False, server_default="0"))
        batch.drop_constraint(_BREAKDOWN, type_="check")
        batch.create_check_constraint(
            _BREAKDOWN, "balance = earned - redeemed + adjusted - expired"
        )
    op.create_table(
        "point_lots",
        sa.Column("id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("shop_id", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_point_lots_points_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_point_lots_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_lots")),
        sa.UniqueConstraint(
            "account_id", "expires_at", name=op.f("uq_point_lots_account_id_expires_at")
        ),
    )
    op.create_index(
        op.f("ix_point_lots_shop_id_expires_at"), "point_lots", ["shop_id", "expires_at"]
    )
    op.create_table(
        "expiry_reminders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("shop_id", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_expiry_reminders_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expiry_reminders")),
        sa.UniqueConstraint(
            "account_id", "expires_at", name=op.f("uq_expiry_reminders_account_id_expires_at")
        ),
    )


def downgrade() -> None:
    op.drop_table("expiry_reminders")
    op.drop_index(op.f("ix_point_lots_shop_id_expires_at"), "point_lots")
    op.drop_table("point_lots")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(_BREAKDOWN, type_="check")
        batch.drop_column("expired")
        batch.create_check_constraint(_BREAKDOWN, "balance = earned - redeemed + adjusted")
    with op.batch_alter_table("shops") as batch:
        batch.drop_constraint(op.f("ck_shops_reminder_not_negative"), type_="check")
        batch.drop_constraint(op.f("ck_shops_expiry_not_negative"), type_="check")
        batch.drop_column("expiry_reminder_days")
        batch.drop_column("points_expire_after_days")
