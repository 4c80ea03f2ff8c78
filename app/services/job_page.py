"""What the dashboard's job page shows about one job. Every read is bounded whatever the
size of the tasks table:

- counts by status: the trigger-kept `task_counts` (a few rows per job);
- oldest pending: one probe of ix_tasks_claimable (the head of the job's queue);
- throughput and failure rate: the trigger-kept per-minute `task_throughput`, last day;
- run- and wait-time percentiles: the job's newest SAMPLE completed tasks, read in
  ix_tasks_job_completed order (migration 0009) and ranked here. A sample rather than a
  rollup: exact over recent work, no write-path cost, and its cost is the sample's size;
- workers and schedules: the job's own rows (worker_jobs, ix_schedules_job_name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Schedule, Task, TaskCount, TaskThroughput, User, Worker, WorkerJob
from app.db.types import utcnow
from app.services import stats
from app.services.rooms import INTERNAL_ROOM
from app.services.tasks.states import TaskStatus

SAMPLE = 1000
CHART_MINUTES = 60
DAY_MINUTES = 24 * 60
QUANTILES = (50, 95, 99)
TOP_WORKERS = 50
TOP_SCHEDULES = 50


@dataclass(frozen=True)
class Window:
    completed: int
    failed: int

    @property
    def failure_rate(self) -> float | None:
        finished = self.completed + self.failed
        return self.failed / finished if finished else None


@dataclass(frozen=True)
class ServingWorker:
    id: str
    owner: str
    last_heartbeat: datetime


@dataclass(frozen=True)
class JobNow:
    """The part of the page that follows the live feed: cheap enough to read every second
    (the trigger-kept counters, one index probe, the per-minute rollup)."""

    job_name: str
    generated_at: datetime
    counts: dict[str, int]
    queue_depth: int
    oldest_pending_age_seconds: float | None
    last_hour: Window
    last_day: Window
    chart_start: datetime  # the first minute of the chart's series
    completed_per_minute: list[int]
    failed_per_minute: list[int]


@dataclass(frozen=True)
class JobPage:
    now: JobNow
    job_name: str
    paused: bool
    internal: bool
    sample_size: int
    run_seconds: dict[int, float]  # quantile -> seconds; empty without completed tasks
    wait_seconds: dict[int, float]
    workers: list[ServingWorker]
    schedules: list[Schedule]


def percentiles(values: list[float]) -> dict[int, float]:
    """Nearest-rank percentiles: each is a value that was measured."""
    if not values:
        return {}
    ordered = sorted(values)
    last = len(ordered) - 1
    return {q: ordered[min(last, max(0, -(-q * len(ordered) // 100) - 1))] for q in QUANTILES}


async def _counts(session: AsyncSession, job_name: str) -> dict[str, int]:
    found = {str(s): 0 for s in TaskStatus}
    rows = await session.execute(
        select(TaskCount.status, func.sum(TaskCount.n))
        .where(TaskCount.job_name == job_name)
        .group_by(TaskCount.status)
    )
    for status, n in rows.all():
        found[status] = int(n or 0)
    return found


async def _oldest_pending(session: AsyncSession, job: Job) -> datetime | None:
    found: datetime | None = await session.scalar(
        select(Task.created_at)
        .where(Task.job_id == job.id, Task.status == TaskStatus.PENDING)
        .order_by(Task.priority.desc(), Task.run_at, Task.seq)
        .limit(1)
    )
    return found


async def _per_minute(
    session: AsyncSession, job_name: str, now: datetime
) -> dict[tuple[datetime, str], int]:
    first = stats.minute_of(now, 60 * (DAY_MINUTES - 1))
    rows = await session.execute(
        select(TaskThroughput.minute, TaskThroughput.status, func.sum(TaskThroughput.n))
        .where(
            TaskThroughput.job_name == job_name,
            TaskThroughput.minute >= first,
            TaskThroughput.status.in_([TaskStatus.COMPLETED, TaskStatus.FAILED]),
        )
        .group_by(TaskThroughput.minute, TaskThroughput.status)
    )
    return {(minute, status): int(n or 0) for minute, status, n in rows.all()}


def _window(per_minute: dict[tuple[datetime, str], int], since: datetime) -> Window:
    def total(status: str) -> int:
        return sum(n for (minute, s), n in per_minute.items() if s == status and minute >= since)

    return Window(total(TaskStatus.COMPLETED), total(TaskStatus.FAILED))


def _series(per_minute: dict[tuple[datetime, str], int], start: datetime, status: str) -> list[int]:
    found = [0] * CHART_MINUTES
    for (minute, s), n in per_minute.items():
        index = int((minute - start).total_seconds() // 60)
        if s == status and 0 <= index < CHART_MINUTES:
            found[index] += n
    return found


async def _durations(session: AsyncSession, job: Job) -> tuple[list[float], list[float]]:
    """Run times (start to finish) and waits (due to start) of the newest completed tasks."""
    rows = await session.execute(
        select(Task.run_at, Task.started_at, Task.completed_at)
        .where(Task.job_id == job.id, Task.status == TaskStatus.COMPLETED)
        .order_by(Task.completed_at.desc())
        .limit(SAMPLE)
    )
    runs: list[float] = []
    waits: list[float] = []
    for due, started, completed in rows.all():
        if started is None or completed is None:
            continue
        runs.append(max(0.0, (completed - started).total_seconds()))
        waits.append(max(0.0, (started - due).total_seconds()))
    return runs, waits


async def _workers(session: AsyncSession, job: Job) -> list[ServingWorker]:
    rows = await session.execute(
        select(Worker.id, User.email, Worker.last_heartbeat)
        .join(WorkerJob, WorkerJob.worker_id == Worker.id)
        .join(User, User.id == Worker.user_id)
        .where(WorkerJob.job_id == job.id)
        .order_by(Worker.last_heartbeat.desc())
        .limit(TOP_WORKERS)
    )
    return [ServingWorker(str(wid), email, beat) for wid, email, beat in rows.all()]


async def registered(session: AsyncSession, job_name: str) -> Job | None:
    """The job by its full name, unless never registered or deleted."""
    job = (await session.execute(select(Job).where(Job.full_name == job_name))).scalar_one_or_none()
    return None if job is None or job.deleted else job


async def _now_of(session: AsyncSession, job: Job, now: datetime) -> JobNow:
    counts = await _counts(session, job.full_name)
    oldest = await _oldest_pending(session, job)
    per_minute = await _per_minute(session, job.full_name, now)
    chart_start = stats.minute_of(now, 60 * (CHART_MINUTES - 1))
    return JobNow(
        job_name=job.full_name,
        generated_at=now,
        counts=counts,
        queue_depth=counts[TaskStatus.PENDING],
        oldest_pending_age_seconds=(
            None if oldest is None else max(0.0, (now - oldest).total_seconds())
        ),
        last_hour=_window(per_minute, stats.minute_of(now, stats.HOUR)),
        last_day=_window(per_minute, stats.minute_of(now, 60 * DAY_MINUTES)),
        chart_start=chart_start,
        completed_per_minute=_series(per_minute, chart_start, TaskStatus.COMPLETED),
        failed_per_minute=_series(per_minute, chart_start, TaskStatus.FAILED),
    )


async def live(session: AsyncSession, job_name: str) -> JobNow | None:
    """The live part alone (what the dashboard feed reads each second for a watched job);
    None for a job never registered (or deleted). Never writes."""
    job = await registered(session, job_name)
    if job is None:
        return None
    return await _now_of(session, job, (await session.execute(select(utcnow()))).scalar_one())


async def collect(session: AsyncSession, job_name: str) -> JobPage | None:
    """The job page's numbers; None for a job never registered (or deleted). Never writes."""
    job = await registered(session, job_name)
    if job is None:
        return None
    now = (await session.execute(select(utcnow()))).scalar_one()
    runs, waits = await _durations(session, job)
    schedules = await session.execute(
        select(Schedule)
        .where(Schedule.job_name == job_name)
        .order_by(Schedule.created_at)
        .limit(TOP_SCHEDULES)
    )
    return JobPage(
        now=await _now_of(session, job, now),
        job_name=job_name,
        paused=job.paused,
        internal=job.room_id == INTERNAL_ROOM,
        sample_size=len(runs),
        run_seconds=percentiles(runs),
        wait_seconds=percentiles(waits),
        workers=await _workers(session, job),
        schedules=list(schedules.scalars()),
    )
