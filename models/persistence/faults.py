"""The database faults that trying the same unit of work again can cure: the connection or the
server failed, not the statement."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

# Connection refused or lost, serialization failures, deadlocks.
INFRASTRUCTURE_FAULTS = (OperationalError, InterfaceError)
