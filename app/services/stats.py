"""Queue statistics (beyond the contract): counts by status per job, age of the oldest pending
task, and tasks finished in the last minute and hour, on the database's clock.

Nothing here scans the tasks table: counts come from `task_counts` and finishes from
`task_throughput` (both kept by triggers on `tasks`, migration 0003); the head of each
job's queue is one probe of ix_tasks_claimable. The time windows are whole
minutes: "last minute" is the current and the previous clock minute, "last hour" the
current and the 60 before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Task, TaskCount, TaskThroughput
from app.db.types import utcnow
from app.services.rooms import validate_room_id
from app.services.tasks.states import TaskStatus

MINUTE = 60
HOUR = 3600
FINISHED = (TaskStatus.COMPLETED, TaskStatus.FAILED)


@dataclass
class JobStats:
    job_name: str
    counts: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in TaskStatus})
    oldest_pending_age_seconds: float | None = None
    completed_last_minute: int = 0
    completed_last_hour: int = 0
    failed_last_minute: int = 0
    failed_last_hour: int = 0
    paused: bool = False  # beyond the contract: claims skip the job's tasks


@dataclass(frozen=True)
class Stats:
    generated_at: datetime
    jobs: list[JobStats]


def minute_of(moment: datetime, seconds_back: int) -> datetime:
    """The start of the clock minute `seconds_back` before `moment`."""
    return (moment - timedelta(seconds=seconds_back)).replace(second=0, microsecond=0)


async def counts(session: AsyncSession, room_id: str | None = None) -> dict[str, dict[str, int]]:
    """job -> status -> how many tasks are in it now (every status listed)."""
    query = select(TaskCount.job_name, TaskCount.status, func.sum(TaskCount.n)).group_by(
        TaskCount.job_name, TaskCount.status
    )
    if room_id is not None:
        query = query.where(TaskCount.room_id == room_id)
    found: dict[str, dict[str, int]] = {}
    for job_name, status, n in (await session.execute(query)).all():
        if n:
            found.setdefault(job_name, {str(s): 0 for s in TaskStatus})[status] = int(n)
    return found


def _finished_since(start: datetime) -> ColumnElement[int]:
    return func.sum(case((TaskThroughput.minute >= start, TaskThroughput.n), else_=0))


async def _finished(
    session: AsyncSession, now: datetime, room_id: str | None
) -> dict[tuple[str, str], tuple[int, int]]:
    """(job, status) -> (finished in the last minute, in the last hour)."""
    query = (
        select(
            TaskThroughput.job_name,
            TaskThroughput.status,
            _finished_since(minute_of(now, MINUTE)),
            func.sum(TaskThroughput.n),
        )
        .where(
            TaskThroughput.minute >= minute_of(now, HOUR),
            TaskThroughput.status.in_([str(s) for s in FINISHED]),
        )
        .group_by(TaskThroughput.job_name, TaskThroughput.status)
    )
    if room_id is not None:
        query = query.where(TaskThroughput.room_id == room_id)
    return {
        (job, status): (int(minute or 0), int(hour or 0))
        for job, status, minute, hour in (await session.execute(query)).all()
    }


async def oldest_pending(
    session: AsyncSession, job_names: Iterable[str], room_id: str | None
) -> dict[str, datetime]:
    """The creation time of the task at the head of each job's queue (the next one a claim
    takes: among tasks of one priority, the oldest due): one probe of ix_tasks_claimable."""
    names = list(job_names)
    if not names:
        return {}
    head = and_(Task.status == TaskStatus.PENDING, Task.job_id == Job.id)
    if room_id is not None:
        head = and_(head, Task.room_id == room_id)
    first = (
        select(Task.created_at)
        .where(head)
        .order_by(Task.priority.desc(), Task.run_at, Task.seq)
        .limit(1)
        .scalar_subquery()
    )
    rows = await session.execute(select(Job.full_name, first).where(Job.full_name.in_(names)))
    return {name: created for name, created in rows.all() if created is not None}


async def paused_jobs(session: AsyncSession, room_id: str | None) -> set[str]:
    """Paused jobs (of the room, if given): listed even with no tasks, so a pause shows."""
    query = select(Job.full_name).where(Job.paused.is_(True), Job.deleted.is_(False))
    if room_id is not None:
        query = query.where(Job.room_id == room_id)
    return set((await session.execute(query)).scalars())


async def collect(session: AsyncSession, room_id: str | None = None) -> Stats:
    """Stats over all tasks, or over the tasks submitted to one room."""
    if room_id is not None:
        validate_room_id(room_id)
    now = (await session.execute(select(utcnow()))).scalar_one()
    by_job = await counts(session, room_id)
    finished = await _finished(session, now, room_id)
    waiting = [job for job, c in by_job.items() if c[TaskStatus.PENDING]]
    oldest = await oldest_pending(session, waiting, room_id)
    paused = await paused_jobs(session, room_id)
    jobs: dict[str, JobStats] = {}
    for job_name in sorted(set(by_job) | {job for job, _ in finished} | paused):
        stats = JobStats(job_name, paused=job_name in paused)
        stats.counts.update(by_job.get(job_name, {}))
        if job_name in oldest:
            stats.oldest_pending_age_seconds = max(0.0, (now - oldest[job_name]).total_seconds())
        minute, hour = finished.get((job_name, TaskStatus.COMPLETED), (0, 0))
        stats.completed_last_minute, stats.completed_last_hour = minute, hour
        minute, hour = finished.get((job_name, TaskStatus.FAILED), (0, 0))
        stats.failed_last_minute, stats.failed_last_hour = minute, hour
        jobs[job_name] = stats
    return Stats(now, list(jobs.values()))
