"""Tasks: submit, claim, status transitions, reads and lists.

Every function runs in the caller's transaction and never commits; those that change
state return the events to publish after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import dialect_name
from app.db.models import Task, Worker, WorkerJob
from app.db.types import utcnow
from app.errors import Forbidden, InternalJobNotConfigured, TaskNotFound, WorkerNotFound
from app.services import claim_order, retries, task_options, task_views
from app.services import jobs as jobs_service
from app.services.actors import Actor
from app.services.events import Event, TaskAvailable
from app.services.pages import Page, PageRequest, fetch
from app.services.retries import Fence
from app.services.retry import RetryPolicy
from app.services.rooms import INTERNAL_ROOM, validate_room_id
from app.services.states import TaskStatus, check_transition, is_terminal
from app.services.task_options import TaskOptions
from app.services.task_views import TaskView


@dataclass(frozen=True)
class Submission:
    payload: dict[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)  # beyond the contract


@dataclass(frozen=True)
class Submitted:
    view: TaskView
    events: list[Event]
    created: bool = True  # False: an idempotency key matched an existing task


async def target_columns(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    job_name: str,
    internal_jobs: Container[str],
) -> dict[str, Any]:
    """The submit checks in the contract's order, then the columns every task submitted
    to this job and room shares."""
    validate_room_id(room_id)
    job = await jobs_service.resolve(session, job_name)
    actor.require_writer()
    internal = job.room_id == INTERNAL_ROOM
    if internal and job.full_name not in internal_jobs:
        raise InternalJobNotConfigured(
            f"Internal job '{job.full_name}' is registered but no executor is available"
        )
    return {
        "job_id": job.id,
        "job_name": job.full_name,
        "room_id": room_id,
        "created_by": actor.id,
        "internal": internal,
        "status": "claimed" if internal else "pending",
        "claimed_at": utcnow() if internal else None,
    }


async def submit(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    job_name: str,
    submission: Submission,
    internal_jobs: Container[str],
) -> Submitted:
    """Queue a task. An @internal task is stored already `claimed` (worker-less) so that a
    broker message lost after commit is repaired by re-dispatch, never left pending."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "payload": submission.payload,
        **await target_columns(session, actor, room_id, job_name, internal_jobs),
    }
    values.update(submission.options.columns())
    [task], [created] = await task_options.insert_tasks(session, [values])
    view = await task_views.view(session, task)
    if not created:
        return Submitted(view, [], created=False)
    events: list[Event] = [
        task_views.status_event(task, view.queue_position),
        task_views.changed(task),
    ]
    if not task.internal and task_views.due_on_submit(task):
        events.append(TaskAvailable(job_name=task.job_name, room_id=room_id, task_id=str(task.id)))
    return Submitted(view, events)


async def claim(
    session: AsyncSession, actor: Actor, worker_id: uuid.UUID
) -> tuple[TaskView | None, list[Event]]:
    """Hand the next claimable task of this worker's jobs to it, or None.

    One UPDATE over a `FOR UPDATE SKIP LOCKED` sub-select: on PostgreSQL concurrent
    claimers skip each other's rows instead of racing for the same one, and a row whose
    lock is granted after another claimer took it is re-checked and passed over, so a
    None means nothing was claimable. On SQLite the single writer serialises claims.
    """
    actor.require_writer()
    owned = exists().where(Worker.id == worker_id, Worker.user_id == actor.id)
    next_task = claim_order.next_claimable(dialect_name(session), worker_id)
    # The ownership check rides in the UPDATE: the common case is one round trip, and
    # the worker is only looked up again when nothing was claimed, to say why.
    result = await session.execute(
        update(Task)
        .where(Task.seq == next_task, Task.status == "pending", owned)
        .values(status="claimed", worker_id=worker_id, claimed_at=utcnow())
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    task = result.scalar_one_or_none()
    if task is None:
        await _check_claimer(session, actor, worker_id)
        return None, []
    return TaskView(task), [task_views.status_event(task), task_views.changed(task)]


async def _check_claimer(session: AsyncSession, actor: Actor, worker_id: uuid.UUID) -> None:
    owner = await session.scalar(select(Worker.user_id).where(Worker.id == worker_id))
    if owner is None:
        raise WorkerNotFound(f"Worker {worker_id} not found")
    if owner != actor.id:
        raise Forbidden("Worker belongs to a different user")


async def _get_task(session: AsyncSession, task_id: uuid.UUID) -> Task:
    task = (await session.execute(select(Task).where(Task.id == task_id))).scalar_one_or_none()
    if task is None:
        raise TaskNotFound(f"Task '{task_id}' not found")
    return task


async def get(session: AsyncSession, task_id: uuid.UUID) -> TaskView:
    return await task_views.view(session, await _get_task(session, task_id))


def _submitter_cancels_pending(actor: Actor, task: Task, status: TaskStatus) -> bool:
    """[ours] The submitter may withdraw its own task while no worker has it yet."""
    return (
        task.created_by == actor.id
        and task.status == TaskStatus.PENDING
        and status == TaskStatus.CANCELLED
    )


@dataclass(frozen=True)
class _Locked:
    """A task row locked for update, with what authorization and the orphan rule need."""

    task: Task
    worker_owner: uuid.UUID | None
    job_has_workers: bool


async def _lock_for_update(session: AsyncSession, task_id: uuid.UUID) -> _Locked:
    """One round trip: the row (locked), its worker's owner, whether its job has links."""
    linked = exists().where(WorkerJob.job_id == Task.job_id)
    row = (
        await session.execute(
            select(Task, Worker.user_id, linked)
            .outerjoin(Worker, Worker.id == Task.worker_id)
            .where(Task.id == task_id)
            .with_for_update(of=Task)
        )
    ).one_or_none()
    if row is None:
        raise TaskNotFound(f"Task '{task_id}' not found")
    return _Locked(row[0], row[1], bool(row[2]))


def _authorize_update(actor: Actor, locked: _Locked, status: TaskStatus) -> None:
    """Superuser: any task. Others: only tasks claimed by a worker they own (REST.md),
    plus cancelling their own pending submission."""
    if actor.is_superuser:
        return
    actor.require_writer()
    task = locked.task
    if _submitter_cancels_pending(actor, task, status):
        return
    if task.worker_id is None:
        raise Forbidden("Task not claimed by any worker")
    if locked.worker_owner != actor.id:
        raise Forbidden("Not authorized to update this task")


async def update_status(
    session: AsyncSession,
    actor: Actor,
    task_id: uuid.UUID,
    status: TaskStatus,
    error: str | None = None,
    fence: Fence | None = None,
    retry: RetryPolicy = retries.DEFAULT_POLICY,
    *,
    result: Any = None,
) -> tuple[TaskView, list[Event]]:
    """PATCH /tasks/{id}: 404, then authorization, then the state machine. `result`
    (beyond the contract) is stored with `completed`."""
    locked = await _lock_for_update(session, task_id)
    task = locked.task
    retries.check_fence(task, fence)  # beyond the contract: only when the report names one
    _authorize_update(actor, locked, status)
    check_transition(task.status, status)
    retried = (
        await retries.retry_failed(session, task, error, retry) if status == "failed" else None
    )
    if retried is not None:  # beyond the contract: attempts remain, back to pending
        return retried
    values: dict[str, Any] = {"status": str(status)}
    if status == TaskStatus.RUNNING:
        values["started_at"] = utcnow()
    terminal = is_terminal(status)
    if terminal:
        values["completed_at"] = utcnow()
        if error:
            values["error"] = error
        if result is not None:
            values["result"] = result
    task = await task_views.update_row(session, task.seq, values)
    events: list[Event] = [task_views.status_event(task), task_views.changed(task)]
    if terminal and not locked.job_has_workers:  # a linked job is never an orphan
        events.extend(await jobs_service.soft_delete_orphans(session, [task.job_id]))
    return TaskView(task), events


async def list_in_room(
    session: AsyncSession, room_id: str, status: TaskStatus | None, page: PageRequest
) -> Page[TaskView]:
    """Tasks submitted to the room (no @global merging), newest first."""
    validate_room_id(room_id)
    return await _page(session, [Task.room_id == room_id], status, page)


async def list_for_job(
    session: AsyncSession, room_id: str, job_name: str, status: TaskStatus | None, page: PageRequest
) -> Page[TaskView]:
    """Tasks of one job submitted to this room, newest first."""
    validate_room_id(room_id)
    job = await jobs_service.resolve(session, job_name)
    return await _page(session, [Task.job_id == job.id, Task.room_id == room_id], status, page)


async def _page(
    session: AsyncSession, where: list[Any], status: TaskStatus | None, page: PageRequest
) -> Page[TaskView]:
    if status is not None:
        where.append(Task.status == str(status))
    query = select(Task).where(and_(*where)).order_by(Task.created_at.desc(), Task.seq.desc())
    rows, total = await fetch(session, query, page)
    items = await task_views.views(session, [row[0] for row in rows])
    return Page(items, total, page.limit, page.offset)
