"""A task's attempt history (beyond the contract), oldest first: the ended attempts the
trigger of migration 0006 recorded, then the attempt that holds the task now, if any."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import TaskAttempt
from app.services.tasks.records import TaskRecord
from app.services.tasks.states import ACTIVE


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    worker_id: str | None
    claimed_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None  # None while it runs
    # completed, failed, cancelled, released, expired; or claimed/running while it runs
    outcome: str
    error: str | None
    traceback: str | None

    def body(self) -> dict[str, Any]:
        return asdict(self)


def _ended(row: TaskAttempt) -> Attempt:
    return Attempt(
        attempt=row.attempt,
        worker_id=str(row.worker_id) if row.worker_id else None,
        claimed_at=row.claimed_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=row.outcome,
        error=row.error,
        traceback=row.traceback,
    )


def _current(task: TaskRecord) -> Attempt:
    return Attempt(
        attempt=task.attempt,
        worker_id=task.worker_id,
        claimed_at=task.claimed_at,
        started_at=task.started_at,
        ended_at=None,
        outcome=task.status,
        error=None,
        traceback=None,
    )


async def history(session: AsyncSession, task: TaskRecord) -> list[Attempt]:
    """Every attempt of `task` (read by the caller, scope checked), oldest first."""
    query = (
        select(TaskAttempt)
        .where(TaskAttempt.task_id == uuid.UUID(task.id))
        .order_by(TaskAttempt.attempt)
    )
    found = [_ended(row) for row in (await session.scalars(query)).all()]
    if task.status in ACTIVE:
        found.append(_current(task))
    return found
