"""The loyalty schema. Alembic migrations in ``migrations/`` are the only way it reaches a database;
these classes describe it for queries and keep the migration honest (a test compares the two)."""

from models.persistence.tables.base import Base
from models.persistence.tables.core import (
    accounts,
    ledger_entries,
    processed_commands,
    rejected_messages,
    shops,
    tiers,
)
from models.persistence.tables.fan_out import (
    dead_letters,
    email_deliveries,
    integrations,
    outbox,
    sync_states,
    tier_changes,
)
from models.persistence.tables.lifecycle import expiry_reminders, point_lots

__all__ = [
    "Base",
    "accounts",
    "dead_letters",
    "email_deliveries",
    "expiry_reminders",
    "integrations",
    "ledger_entries",
    "outbox",
    "point_lots",
    "processed_commands",
    "rejected_messages",
    "shops",
    "sync_states",
    "tier_changes",
    "tiers",
]
