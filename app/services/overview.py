"""What the dashboard shows: the stats service's per-job numbers plus throughput, workers,
providers, failures and the newest tasks. Everything is top-N, so it stays small and its
cost bounded whatever the number of jobs and tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Provider, Task, TaskThroughput, User, Worker, WorkerJob
from app.services import stats as stats_service
from app.services.stats import JobStats
from app.services.tasks.records import SHOWS_ERROR
from app.services.tasks.states import TaskStatus

TOP_JOBS = 50
TOP_WORKERS = 50
TOP_PROVIDERS = 50
RECENT_FAILURES = 20
RECENT_TASKS = 20
THROUGHPUT_MINUTES = 15
ACTIVE = (TaskStatus.PENDING, TaskStatus.CLAIMED, TaskStatus.RUNNING)


@dataclass(frozen=True)
class WorkerRow:
    id: str
    owner: str
    last_heartbeat: datetime
    jobs: list[str]


@dataclass(frozen=True)
class ProviderRow:
    full_name: str
    worker_id: str


@dataclass(frozen=True)
class TaskRow:
    id: str
    job_name: str
    status: str
    attempt: int
    max_attempts: int
    created_at: datetime
    error: str | None
    progress: float | None = None


@dataclass
class Overview:
    generated_at: datetime
    jobs: list[JobStats]
    job_count: int
    throughput: dict[str, list[int]]  # job -> finished per minute, oldest minute first
    workers: list[WorkerRow]
    worker_count: int
    providers: list[ProviderRow]
    provider_count: int
    failures: list[TaskRow]
    recent: list[TaskRow]
    totals: dict[str, int] = field(default_factory=dict)


async def _throughput(
    session: AsyncSession, jobs: list[str], now: datetime
) -> dict[str, list[int]]:
    """Tasks finished per clock minute over the last THROUGHPUT_MINUTES (the current
    minute last), from the trigger-kept per-minute counts."""
    if not jobs:
        return {}
    first = stats_service.minute_of(now, 60 * (THROUGHPUT_MINUTES - 1))
    rows = await session.execute(
        select(TaskThroughput.job_name, TaskThroughput.minute, func.sum(TaskThroughput.n))
        .where(TaskThroughput.job_name.in_(jobs), TaskThroughput.minute >= first)
        .group_by(TaskThroughput.job_name, TaskThroughput.minute)
    )
    found = {job: [0] * THROUGHPUT_MINUTES for job in jobs}
    for job, minute, n in rows.all():
        index = int((minute - first).total_seconds() // 60)
        if 0 <= index < THROUGHPUT_MINUTES:
            found[job][index] += int(n)
    return found


async def _workers(session: AsyncSession) -> list[WorkerRow]:
    rows = (
        await session.execute(
            select(Worker.id, User.email, Worker.last_heartbeat)
            .join(User, User.id == Worker.user_id)
            .order_by(Worker.last_heartbeat.desc())
            .limit(TOP_WORKERS)
        )
    ).all()
    ids = [row[0] for row in rows]
    served: dict[object, list[str]] = {}
    if ids:
        pairs = await session.execute(
            select(WorkerJob.worker_id, Job.full_name)
            .join(Job, Job.id == WorkerJob.job_id)
            .where(WorkerJob.worker_id.in_(ids))
            .order_by(Job.full_name)
        )
        for worker_id, name in pairs.all():
            served.setdefault(worker_id, []).append(name)
    return [WorkerRow(str(wid), email, beat, served.get(wid, [])) for wid, email, beat in rows]


def _task_row(task: Task) -> TaskRow:
    return TaskRow(
        str(task.id),
        task.job_name,
        task.status,
        task.attempt,
        task.max_attempts,
        task.created_at,
        task.error if task.status in SHOWS_ERROR else None,
        task.progress,
    )


async def _tasks(session: AsyncSession, failed_only: bool, limit: int) -> list[TaskRow]:
    query = select(Task)
    if failed_only:
        query = query.where(Task.status == TaskStatus.FAILED).order_by(Task.completed_at.desc())
    else:
        query = query.order_by(Task.seq.desc())
    return [_task_row(t) for t in (await session.execute(query.limit(limit))).scalars()]


def _rank(job: JobStats) -> tuple[int, str]:
    """Busy jobs first: a server with 10,000 jobs shows the ones with work in flight."""
    return (-sum(job.counts[str(s)] for s in ACTIVE), job.job_name)


async def collect(session: AsyncSession) -> Overview:
    """One read of everything the dashboard shows. Never writes."""
    found = await stats_service.collect(session)
    ranked = sorted(found.jobs, key=_rank)
    jobs = ranked[:TOP_JOBS]
    totals = {str(s): sum(j.counts[str(s)] for j in found.jobs) for s in TaskStatus}
    worker_count = await session.scalar(select(func.count()).select_from(Worker))
    providers = (
        await session.execute(
            select(Provider.full_name, Provider.worker_id)
            .order_by(Provider.full_name)
            .limit(TOP_PROVIDERS)
        )
    ).all()
    provider_count = await session.scalar(select(func.count()).select_from(Provider))
    return Overview(
        generated_at=found.generated_at,
        jobs=jobs,
        job_count=len(found.jobs),
        throughput=await _throughput(session, [j.job_name for j in jobs], found.generated_at),
        workers=await _workers(session),
        worker_count=int(worker_count or 0),
        providers=[ProviderRow(name, str(wid)) for name, wid in providers],
        provider_count=int(provider_count or 0),
        failures=await _tasks(session, failed_only=True, limit=RECENT_FAILURES),
        recent=await _tasks(session, failed_only=False, limit=RECENT_TASKS),
        totals=totals,
    )


async def find_task(session: AsyncSession, task_id: object) -> Task | None:
    return (await session.execute(select(Task).where(Task.id == task_id))).scalar_one_or_none()


async def list_users(session: AsyncSession, offset: int, limit: int) -> tuple[list[User], int]:
    """A page of users by email, and how many there are."""
    total = await session.scalar(select(func.count()).select_from(User))
    page = await session.execute(select(User).order_by(User.email).offset(offset).limit(limit))
    return list(page.scalars()), int(total or 0)
