"""A task's attempt history (beyond the contract), oldest first: the ended attempts the
trigger of migration 0006 recorded, then the attempt that holds the task now, if any."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import TaskAttempt
from app.services.tasks.states import ACTIVE


class HeldTask(Protocol):
    """What the history needs of a task: a TaskRecord or the ORM's Task."""

    @property
    def id(self) -> uuid.UUID | str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def worker_id(self) -> uuid.UUID | str | None: ...
    @property
    def claimed_at(self) -> datetime | None: ...
    @property
    def started_at(self) -> datetime | None: ...


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


def _current(task: HeldTask) -> Attempt:
    return Attempt(
        attempt=task.attempt,
        worker_id=str(task.worker_id) if task.worker_id else None,
        claimed_at=task.claimed_at,
        started_at=task.started_at,
        ended_at=None,
        outcome=task.status,
        error=None,
        traceback=None,
    )


async def history(session: AsyncSession, task: HeldTask) -> list[Attempt]:
    """Every attempt of `task` (read by the caller, scope checked), oldest first."""
    query = (
        select(TaskAttempt)
        .where(TaskAttempt.task_id == uuid.UUID(str(task.id)))
        .order_by(TaskAttempt.attempt)
    )
    found = [_ended(row) for row in (await session.scalars(query)).all()]
    if task.status in ACTIVE:
        found.append(_current(task))
    return found
