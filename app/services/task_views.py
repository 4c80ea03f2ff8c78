"""A task as clients see it (the row plus its queue position, its status event), and the
one statement that changes a task row and reads it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.services.events import Event, TaskChanged, TaskStatusEvent


@dataclass(frozen=True)
class TaskView:
    task: Task
    queue_position: int | None = None


def ahead_of(task: Task) -> object:
    """Pending tasks of the same job that a claim would take before `task` (claim order:
    priority DESC, due time, insertion)."""
    same_priority_earlier = and_(
        Task.priority == task.priority,
        or_(Task.run_at < task.run_at, and_(Task.run_at == task.run_at, Task.seq < task.seq)),
    )
    return and_(
        Task.job_id == task.job_id,
        Task.status == "pending",
        or_(Task.priority > task.priority, same_priority_earlier),
    )


async def queue_position(session: AsyncSession, task: Task) -> int | None:
    """1-based rank among all pending tasks of the job (all rooms); None unless pending."""
    if task.status != "pending":
        return None
    ahead = await session.execute(select(func.count()).select_from(Task).where(ahead_of(task)))  # type: ignore[arg-type]
    return int(ahead.scalar_one()) + 1


async def view(session: AsyncSession, task: Task) -> TaskView:
    return TaskView(task, await queue_position(session, task))


async def views(session: AsyncSession, tasks: Sequence[Task]) -> list[TaskView]:
    return [await view(session, task) for task in tasks]


def status_event(task: Task, queue_position: int | None = None) -> TaskStatusEvent:
    return TaskStatusEvent(
        id=str(task.id),
        name=task.job_name,
        room_id=task.room_id,
        status=task.status,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        queue_position=queue_position,
        worker_id=str(task.worker_id) if task.worker_id else None,
        error=task.error,
    )


def status_events(tasks: Iterable[Task]) -> list[Event]:
    """The status event and the long-poll wake-up for each changed task."""
    events: list[Event] = []
    for task in tasks:
        events.append(status_event(task))
        events.append(changed(task))
    return events


def changed(task: Task) -> TaskChanged:
    return TaskChanged(
        task_id=task.id,
        status=task.status,
        internal=task.internal,
        job_name=task.job_name,
        attempt=task.attempt,
        created_at=task.created_at,
        claimed_at=task.claimed_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
    )


def task_ids(tasks: Iterable[Task]) -> list[uuid.UUID]:
    return [task.id for task in tasks]


async def update_row(session: AsyncSession, seq: int, values: dict[str, Any]) -> Task:
    """UPDATE one task by its seq and return the row as it now is."""
    result = await session.execute(
        update(Task)
        .where(Task.seq == seq)
        .values(**values)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return result.scalar_one()


# A task due within this of its creation counts as due on submit (created_at and run_at
# are two reads of the clock in one INSERT); later ones are announced by the scheduler.
DUE_ON_SUBMIT_SECONDS = 0.01


def due_on_submit(task: Task) -> bool:
    """Claimable at once: announced by the submit (later ones by the scheduler pass)."""
    return (task.run_at - task.created_at).total_seconds() <= DUE_ON_SUBMIT_SECONDS
