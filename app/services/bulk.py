"""Bulk submit: up to MAX_BULK tasks of one job in one statement and one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import dialect_name
from app.db.models import Task
from app.services import task_options, task_views
from app.services import tasks as tasks_service
from app.services.actors import Actor
from app.services.events import Event, TaskAvailable
from app.services.task_views import TaskView
from app.services.tasks import Submission

MAX_BULK = 1000


@dataclass(frozen=True)
class BulkSubmitted:
    views: list[TaskView]
    events: list[Event]


async def submit_many(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    job_name: str,
    submissions: Sequence[Submission],
    internal_jobs: Container[str],
) -> BulkSubmitted:
    """Queue every submission or none (the caller's transaction). Items whose idempotency
    key exists stand for the existing task. Same checks and events as a single submit."""
    common = await tasks_service.target_columns(session, actor, room_id, job_name, internal_jobs)
    if not submissions:
        return BulkSubmitted([], [])
    ids = [uuid.uuid4() for _ in submissions]
    if dialect_name(session) == "postgresql":
        tasks, created = await task_options.insert_tasks_pg(
            session, common, ids, [s.payload for s in submissions], [s.options for s in submissions]
        )
    else:
        rows = [
            {"id": i, "payload": s.payload, **common, **s.options.columns()}
            for i, s in zip(ids, submissions, strict=True)
        ]
        tasks, created = await task_options.insert_tasks(session, rows)
    positions = await _queue_positions(session, common["job_id"], tasks)
    views = [TaskView(t, positions.get(t.id)) for t in tasks]
    events: list[Event] = []
    for view, new in zip(views, created, strict=True):
        if new:
            events.append(task_views.status_event(view.task, view.queue_position))
            events.append(task_views.changed(view.task))
    due = [t for t, new in zip(tasks, created, strict=True) if new and task_views.due_on_submit(t)]
    if not common["internal"] and due:
        # One wake-up per batch: a woken worker claims until the queue is empty. Delayed
        # items are announced by the scheduler pass once due.
        first = due[0]
        events.append(
            TaskAvailable(job_name=first.job_name, room_id=room_id, task_id=str(first.id))
        )
    return BulkSubmitted(views, events)


async def _queue_positions(
    session: AsyncSession, job_id: uuid.UUID, tasks: Sequence[Task]
) -> dict[uuid.UUID, int]:
    """Queue positions of many tasks of one job in one pass over its pending tasks, ranked
    in claim order (the order task_views.queue_position counts in).

    The batch is picked out by its `seq` range, not by 1,000 ids: a fixed statement that
    stays prepared, where an expanding IN list is a new statement every time."""
    pending = [t.seq for t in tasks if t.status == "pending"]
    if not pending:
        return {}
    rank = func.row_number().over(order_by=(Task.priority.desc(), Task.run_at, Task.seq))
    ranked = (
        select(Task.id.label("id"), Task.seq.label("seq"), rank.label("position"))
        .where(Task.job_id == job_id, Task.status == "pending")
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.id, ranked.c.position).where(
            ranked.c.seq.between(min(pending), max(pending))
        )
    )
    wanted = {t.id for t in tasks}
    return {task_id: int(position) for task_id, position in rows.all() if task_id in wanted}
