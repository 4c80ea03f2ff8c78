"""Pause and resume a job (beyond the contract): claims skip a paused job's tasks (the
stores' claim statements read `jobs.paused`); submits are still accepted."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.db.types import utcnow
from app.errors import Forbidden, InternalJobNotPausable, JobNotFound
from app.services import jobs
from app.services.actors import Actor
from app.services.events import Event, JobsInvalidate, TaskAvailable
from app.services.jobs import JobView
from app.services.rooms import INTERNAL_ROOM, parse_full_name
from app.services.tasks.states import TaskStatus


async def set_paused(
    session: AsyncSession, actor: Actor, job_name: str, paused: bool
) -> tuple[JobView, list[Event]]:
    """Pause or resume the job named in full; repeating either changes nothing. A resume
    wakes the job's waiting workers when a task is due. Never commits."""
    actor.require_writer()
    if parse_full_name(job_name) is None:
        raise JobNotFound(f"Invalid job name format: {job_name}")
    job = await jobs.by_full_name(session, job_name, lock=True)
    if job is None or job.deleted:
        raise JobNotFound(f"Job '{job_name}' not found")
    if job.room_id == INTERNAL_ROOM:
        raise InternalJobNotPausable(f"Internal job '{job_name}' cannot be paused or resumed")
    if not jobs.may_configure(job, actor):
        verb = "pause" if paused else "resume"
        raise Forbidden(
            f"Only the user who first registered job '{job_name}' (or an admin) may {verb} it"
        )
    events: list[Event] = []
    if job.paused != paused:
        job.paused = paused
        await session.flush()
        events.append(JobsInvalidate(job.room_id))
        if not paused:
            events += await _wake(session, job.id, job_name, job.room_id)
    view = JobView(job, await jobs.worker_ids(session, job.id))
    return view, events


async def _wake(
    session: AsyncSession, job_id: uuid.UUID, job_name: str, room_id: str
) -> list[Event]:
    """One wake-up, as a submit sends: a woken worker claims until the queue is empty.
    Tasks due later are announced by the leader's scheduler pass."""
    due = await session.execute(
        select(Task.id)
        .where(
            Task.job_id == job_id,
            Task.status == TaskStatus.PENDING,
            Task.internal.is_(False),
            Task.run_at <= utcnow(),
        )
        .limit(1)
    )
    task_id = due.scalar_one_or_none()
    if task_id is None:
        return []
    return [TaskAvailable(job_name=job_name, room_id=room_id, task_id=str(task_id))]
