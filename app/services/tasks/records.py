"""A task as the store reads it, and the task as clients see it (with its queue position).

Ids are canonical UUID strings and JSON columns stay the text the database holds: the hot
path hands them to the response unparsed; `payload_value()` and `result_value()` parse.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson

RawJson = str  # JSON text as stored; parsed only where Python needs the value
SHOWS_ERROR = frozenset({"failed", "cancelled"})


@dataclass(slots=True)
class TaskRecord:
    seq: int
    id: str
    job_id: str
    job_name: str
    room_id: str
    status: str
    payload: RawJson
    result: RawJson | None
    error: str | None
    created_by: str | None
    worker_id: str | None
    internal: bool
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    claimed_at: datetime | None
    priority: int
    run_at: datetime
    attempt: int
    max_attempts: int
    lease_expires_at: datetime | None
    idempotency_key: str | None
    concurrency_key: str | None
    has_dependants: bool
    # Beyond the contract: the running attempt's last progress report.
    progress: float | None
    progress_message: str | None
    progress_at: datetime | None

    @property
    def shown_error(self) -> str | None:
        """The error clients see: the last attempt's while the task is failed, or why it
        was cancelled (a failed parent; a cancel clears it otherwise). A task pending for
        its retry, or completed on one, shows none; its attempts keep theirs."""
        return self.error if self.status in SHOWS_ERROR else None

    def payload_value(self) -> dict[str, Any]:
        value = orjson.loads(self.payload)
        return value if isinstance(value, dict) else {}

    def result_value(self) -> Any:
        return None if self.result is None else orjson.loads(self.result)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TaskRecord))


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task and its 1-based rank among its job's pending tasks (None unless pending)."""

    task: TaskRecord
    queue_position: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One task a statement wrote: the row after, the status before (None: inserted), its
    queue position when it is pending now."""

    task: TaskRecord
    old_status: str | None
    queue_position: int | None = None

    @property
    def view(self) -> TaskView:
        return TaskView(self.task, self.queue_position)
