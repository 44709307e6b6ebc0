"""The one clock: every time the worker records is UTC and read here; the pure rules take the
instant as an argument instead of reading a clock."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A moment read back from the database, in UTC: SQLite gives naive datetimes, and every
    time this worker records is UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
