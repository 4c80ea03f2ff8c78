"""Queue statistics (beyond the contract): counts by status per job, oldest pending age,
and tasks finished in the last minute and hour, all on the database's clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.db.types import utcnow, utcnow_plus
from app.services.rooms import validate_room_id
from app.services.states import TaskStatus

MINUTE = 60
HOUR = 3600


@dataclass
class JobStats:
    job_name: str
    counts: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in TaskStatus})
    oldest_pending_age_seconds: float | None = None
    completed_last_minute: int = 0
    completed_last_hour: int = 0
    failed_last_minute: int = 0
    failed_last_hour: int = 0


@dataclass(frozen=True)
class Stats:
    generated_at: datetime
    jobs: list[JobStats]


def _finished_since(seconds: int) -> ColumnElement[int]:
    return func.sum(case((Task.completed_at >= utcnow_plus(-seconds), 1), else_=0))


async def collect(session: AsyncSession, room_id: str | None = None) -> Stats:
    """Stats over all tasks, or over the tasks submitted to one room. One grouped query."""
    if room_id is not None:
        validate_room_id(room_id)
    now = (await session.execute(select(utcnow()))).scalar_one()
    query = select(
        Task.job_name,
        Task.status,
        func.count(),
        func.min(Task.created_at),
        _finished_since(MINUTE),
        _finished_since(HOUR),
    ).group_by(Task.job_name, Task.status)
    if room_id is not None:
        query = query.where(Task.room_id == room_id)
    jobs: dict[str, JobStats] = {}
    for job_name, status, count, oldest, last_minute, last_hour in (
        await session.execute(query)
    ).all():
        stats = jobs.setdefault(job_name, JobStats(job_name))
        stats.counts[status] = int(count)
        if status == TaskStatus.PENDING and oldest is not None:
            stats.oldest_pending_age_seconds = max(0.0, (now - oldest).total_seconds())
        if status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            setattr(stats, f"{status}_last_minute", int(last_minute or 0))
            setattr(stats, f"{status}_last_hour", int(last_hour or 0))
    return Stats(now, sorted(jobs.values(), key=lambda s: s.job_name))
