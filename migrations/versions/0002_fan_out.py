"""Fan-out: outbox progress, tier changes, integrations, sync states, email deliveries,
dead letters, and the shop's email sender.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("shop_id", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("encrypted_api_key", sa.Text(), nullable=False),
        sa.Column("key_hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_integrations_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "provider", name=op.f("pk_integrations")),
    )
    op.create_table(
        "email_deliveries",
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("shop_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_deliveries_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_email_deliveries")),
    )
    op.create_table(
        "sync_states",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("synced_revision", sa.BigInteger(), nullable=False),
        sa.Column("synced_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sync_states_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "provider", name=op.f("pk_sync_states")),
    )
    op.create_table(
        "tier_changes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("shop_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("from_tier", sa.String(length=100), nullable=True),
        sa.Column("to_tier", sa.String(length=100), nullable=True),
        sa.Column("lifetime_points", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_tier_changes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    op.create_index(
        op.f("ix_tier_changes_account_id_id"), "tier_changes", ["account_id", "id"], unique=False
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", BigId, nullable=False),
        sa.Column("outbox_id", BigId, nullable=False),
        sa.Column("task_name", sa.String(length=100), nullable=False),
        sa.Column("shop_id", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_dead_letters_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(
        op.f("ix_dead_letters_replayed_at_id"), "dead_letters", ["replayed_at", "id"], unique=False
    )
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("revision", sa.BigInteger(), nullable=True))
        outbox.add_column(
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        outbox.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        outbox.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
        outbox.add_column(sa.Column("outcome", sa.String(length=200), nullable=True))
        outbox.alter_column("account_id", existing_type=BigId, nullable=True)
        outbox.drop_index("ix_outbox_undispatched")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("completed_at IS NULL"),
        sqlite_where=sa.text("completed_at IS NULL"),
    )
    op.add_column("shops", sa.Column("email_from", sa.String(length=320), nullable=True))


def downgrade() -> None:
    op.drop_column("shops", "email_from")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.execute("DELETE FROM outbox WHERE account_id IS NULL")
    with op.batch_alter_table("outbox") as outbox:
        outbox.alter_column("account_id", existing_type=BigId, nullable=False)
        for column in ("outcome", "completed_at", "last_error", "attempts", "revision"):
            outbox.drop_column(column)
    op.create_index(
        "ix_outbox_undispatched",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("dispatched_at IS NULL"),
        sqlite_where=sa.text("dispatched_at IS NULL"),
    )
    op.drop_index(op.f("ix_dead_letters_replayed_at_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index(op.f("ix_tier_changes_account_id_id"), table_name="tier_changes")
    op.drop_table("tier_changes")
    op.drop_table("sync_states")
    op.drop_table("email_deliveries")
    op.drop_table("integrations")
