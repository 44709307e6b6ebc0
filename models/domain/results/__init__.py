"""The result every command returns and the database keeps: its shapes (``shapes``), defined
once, and the builders that construct them (``builders``)."""

from models.domain.results.builders import (
    StoredCustomer,
    account_view,
    applied,
    customer_upserted,
    failed,
    rejected,
    replayed,
    timestamp,
)
from models.domain.results.shapes import (
    APPLIED,
    FAILED,
    INTERNAL_ERROR,
    REJECTED,
    Account,
    AdjustmentApplied,
    CommandFailed,
    CommandRejected,
    CommandResult,
    CustomerUpserted,
    ResultJSON,
    as_json,
    command_result,
)

__all__ = [
    "APPLIED",
    "FAILED",
    "INTERNAL_ERROR",
    "REJECTED",
    "Account",
    "AdjustmentApplied",
    "CommandFailed",
    "CommandRejected",
    "CommandResult",
    "CustomerUpserted",
    "ResultJSON",
    "StoredCustomer",
    "account_view",
    "applied",
    "as_json",
    "command_result",
    "customer_upserted",
    "failed",
    "rejected",
    "replayed",
    "timestamp",
]
