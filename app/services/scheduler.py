"""The scheduler pass: wake workers for delayed or retried tasks that became due.

One indexed range query per pass (ix_tasks_pending_due), never a timer per task.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import dialect_name, later_by
from app.db.models import Task
from app.db.types import utcnow
from app.services.events import TaskAvailable
from app.services.task_views import DUE_ON_SUBMIT_SECONDS

# A task made due by a transaction that commits after a pass read its window would be
# missed; re-reading this much of the previous window covers such late commits. Wake-ups
# are idempotent (a worker just claims), so the overlap only costs a duplicate event.
OVERLAP = timedelta(seconds=5)


async def wake_due_tasks(
    session: AsyncSession, since: datetime | None
) -> tuple[list[TaskAvailable], datetime]:
    """TaskAvailable for each (job, room) with a pending task that became due in
    (since - OVERLAP, now]; `since=None` (a new leader) wakes every due pending task.

    Returns the events and the `since` of the next pass (the database's now)."""
    now = (await session.execute(select(utcnow()))).scalar_one()
    window: list[ColumnElement[bool]] = [
        Task.status == "pending",
        Task.internal.is_(False),
        Task.run_at <= now,
    ]
    if since is not None:
        window.append(Task.run_at > since - OVERLAP)
        # Tasks due on submit were announced by the submit itself; retries count anew.
        window.append(
            later_by(
                dialect_name(session),
                Task.run_at.expression,
                Task.created_at.expression,
                DUE_ON_SUBMIT_SECONDS,
            )
        )
    heads = (
        select(func.min(Task.seq).label("seq"))
        .where(*window)
        .group_by(Task.job_name, Task.room_id)
        .subquery()
    )
    rows = await session.execute(
        select(Task.job_name, Task.room_id, Task.id)
        .join(heads, Task.seq == heads.c.seq)
        .order_by(Task.seq)
    )
    events = [
        TaskAvailable(job_name=job_name, room_id=room_id, task_id=str(task_id))
        for job_name, room_id, task_id in rows.all()
    ]
    return events, now
