"""Cancel and retry a task on request (beyond the contract). Both run in the caller's
transaction, never commit, and return the events to publish after commit."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Task, Worker, WorkerJob
from app.db.types import utcnow
from app.errors import Forbidden, InvalidTaskTransition, JobNotFound, TaskNotFound
from app.services import jobs as jobs_service
from app.services import task_views
from app.services.actors import Actor
from app.services.events import Event, TaskAvailable
from app.services.states import TaskStatus, check_transition
from app.services.task_views import TaskView

RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


async def _locked(session: AsyncSession, task_id: uuid.UUID) -> Task:
    task = (
        await session.execute(select(Task).where(Task.id == task_id).with_for_update())
    ).scalar_one_or_none()
    if task is None:
        raise TaskNotFound(f"Task '{task_id}' not found")
    return task


async def _authorize(session: AsyncSession, actor: Actor, task: Task, action: str) -> None:
    """The submitter, an owner of a worker serving the job (or holding the task), or an admin."""
    actor.require_writer()
    if actor.is_superuser or task.created_by == actor.id:
        return
    serves_job = exists().where(
        WorkerJob.job_id == task.job_id,
        Worker.id == WorkerJob.worker_id,
        Worker.user_id == actor.id,
    )
    holds_task = exists().where(Worker.id == task.worker_id, Worker.user_id == actor.id)
    if not await session.scalar(select(serves_job | holds_task)):
        raise Forbidden(f"Not authorized to {action} this task")


async def cancel(
    session: AsyncSession, actor: Actor, task_id: uuid.UUID
) -> tuple[TaskView, list[Event]]:
    """pending/claimed/running -> cancelled. The worker's later reports then hit the state
    machine (cancelled is terminal), so the task never turns completed."""
    task = await _locked(session, task_id)
    await _authorize(session, actor, task, "cancel")
    check_transition(task.status, TaskStatus.CANCELLED)
    task = await task_views.update_row(
        session, task.seq, {"status": "cancelled", "completed_at": utcnow()}
    )
    events: list[Event] = [task_views.status_event(task), task_views.changed(task)]
    events.extend(await jobs_service.soft_delete_orphans(session, [task.job_id]))
    return TaskView(task), events


async def retry(
    session: AsyncSession, actor: Actor, task_id: uuid.UUID
) -> tuple[TaskView, list[Event]]:
    """failed/cancelled -> a new pending attempt, due now, with one more attempt allowed."""
    task = await _locked(session, task_id)
    await _authorize(session, actor, task, "retry")
    if task.status not in RETRYABLE or task.internal:
        raise InvalidTaskTransition(f"Cannot transition from '{task.status}' to 'pending'")
    job = await session.get(Job, task.job_id)
    if job is None or job.deleted:
        # The job lost its last worker; a pending task would wait for nobody.
        raise JobNotFound(f"Job '{task.job_name}' not found")
    attempt = task.attempt + 1
    task = await task_views.update_row(
        session,
        task.seq,
        {
            "status": "pending",
            "attempt": attempt,
            "max_attempts": max(task.max_attempts, attempt),
            "run_at": utcnow(),
            "worker_id": None,
            "claimed_at": None,
            "started_at": None,
            "completed_at": None,
        },
    )
    position = await task_views.queue_position(session, task)
    events: list[Event] = [
        task_views.status_event(task, position),
        task_views.changed(task),
        TaskAvailable(job_name=task.job_name, room_id=task.room_id, task_id=str(task.id)),
    ]
    return TaskView(task, position), events
