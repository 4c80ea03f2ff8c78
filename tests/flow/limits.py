"""Helpers for the concurrency-limit tests: set a job's limits in the database (the API
that sets them is another feature's), and read what is active."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, select, update

from app.db.models import Job, Task
from app.services.actors import Actor
from app.services.tasks.submit import Submission, TaskOptions
from app.state import Core
from tests.factories import make_job, make_user, make_worker

ACTIVE = ("claimed", "running")


async def set_limits(
    core: Core,
    job_id: uuid.UUID | str,
    *,
    max_running: int | None = None,
    max_running_per_key: int | None = None,
) -> None:
    async with core.sessionmaker() as session:
        await session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(str(job_id)))
            .values(max_running=max_running, max_running_per_key=max_running_per_key)
        )
        await session.commit()


async def job_id_of(core: Core, full_name: str) -> uuid.UUID:
    async with core.sessionmaker() as session:
        found = await session.scalar(select(Job.id).where(Job.full_name == full_name))
    assert found is not None
    return found


async def active_by_key(core: Core, job_id: uuid.UUID) -> Counter[str | None]:
    """The job's claimed and running tasks, per concurrency key, as committed now."""
    async with core.sessionmaker() as session:
        rows = await session.execute(
            select(Task.concurrency_key, func.count())
            .where(Task.job_id == job_id, Task.status.in_(ACTIVE))
            .group_by(Task.concurrency_key)
        )
        return Counter({key: int(count) for key, count in rows.all()})


async def counters(core: Core, job_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    """jobs.active and jobs.active_keys (kept on PostgreSQL only)."""
    async with core.sessionmaker() as session:
        row = (
            await session.execute(select(Job.active, Job.active_keys).where(Job.id == job_id))
        ).one()
    return row.active, dict(row.active_keys)


async def setup(core: Core, workers: int) -> tuple[Actor, list[uuid.UUID], uuid.UUID, str]:
    """A user with `workers` workers all serving one job: (actor, worker ids, job id, name)."""
    async with core.sessionmaker() as session:
        user = await make_user(session)
        rows = [await make_worker(session, user) for _ in range(workers)]
        job = await make_job(session, workers=tuple(rows))
        await session.commit()
        return Actor(user.id, "operator"), [w.id for w in rows], job.id, job.full_name


async def submit_keys(core: Core, actor: Actor, job_name: str, keys: list[str | None]) -> None:
    """One task per entry, in this order, each with that concurrency key."""
    batch = [Submission({"i": i}, TaskOptions(concurrency_key=k)) for i, k in enumerate(keys)]
    await core.tasks.submit(actor, "room1", job_name, batch)
