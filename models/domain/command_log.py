"""What the command log keeps of each command: its stored result under its idempotency key, or,
for a message that never became a command, the refused payload (truncated) and its rejection."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

MAX_REJECTED_PAYLOAD = 65_536
"""Characters of a rejected payload kept: enough for any real command, and a 20 MB body sent to
fill the database costs 64 KB."""


def processed_row(
    shop_id: str,
    command_id: str,
    command_type: str,
    payload_hash: str,
    result: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "command_id": command_id,
        "command_type": command_type,
        "payload_hash": payload_hash,
        "status": result["status"],
        "result": result,
        "created_at": now,
    }


def rejected_message_row(
    command_type: str,
    shop_id: str | None,
    command_id: str | None,
    payload: Any,
    result: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    text = json.dumps(payload, default=repr)
    return {
        "command_type": command_type,
        "shop_id": shop_id,
        "command_id": command_id,
        "code": result["error"]["code"],
        "result": result,
        "payload": text[:MAX_REJECTED_PAYLOAD],
        "payload_truncated": len(text) > MAX_REJECTED_PAYLOAD,
        "created_at": now,
    }
