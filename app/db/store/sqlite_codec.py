"""How the SQLite store reads and writes values the way SQLAlchemy stores them there:
UUIDs as 32 lowercase hex digits, times as naive UTC text, booleans as 0/1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.db.types import SQLITE_TIME_FORMAT
from app.services.tasks.records import COLUMNS, TaskRecord

BUSY_TIMEOUT_MS = 30_000
_UUIDS = tuple(COLUMNS.index(name) for name in ("id", "job_id", "created_by", "worker_id"))
_TIMES = tuple(
    COLUMNS.index(name)
    for name in (
        "created_at",
        "started_at",
        "completed_at",
        "claimed_at",
        "run_at",
        "lease_expires_at",
        "progress_at",
    )
)
_BOOLS = (COLUMNS.index("internal"), COLUMNS.index("has_dependants"))
_JSON = (COLUMNS.index("payload"), COLUMNS.index("result"))
_WIDTH = len(COLUMNS)


def hex_id(value: str) -> str:
    return value.replace("-", "")


def uuid_text(value: str) -> str:
    h = value.replace("-", "")
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def time_text(offset_seconds: float = 0.0, at: datetime | None = None) -> str:
    """`at` (default: now) plus the offset, as SQLite holds times."""
    moment = (at or datetime.now(UTC)).astimezone(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime(SQLITE_TIME_FORMAT)


def time_of(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def record_of(row: tuple[Any, ...]) -> TaskRecord:
    values = list(row[:_WIDTH])
    for index in _UUIDS:
        if values[index] is not None:
            values[index] = uuid_text(values[index])
    for index in _TIMES:
        if values[index] is not None:
            values[index] = time_of(values[index])
    for index in _BOOLS:
        values[index] = bool(values[index])
    for index in _JSON:
        # A JSON column has NUMERIC affinity in SQLite: a bare number comes back as one.
        if values[index] is not None and not isinstance(values[index], str):
            values[index] = orjson.dumps(values[index]).decode()
    return TaskRecord(*values)
