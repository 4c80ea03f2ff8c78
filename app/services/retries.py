"""Failed attempts that run again: a worker-reported failure or a lost worker returns the
task to pending (attempt + 1, due after the backoff) while attempts remain; and fencing,
which refuses reports from an attempt that is no longer current."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.db.types import utcnow, utcnow_plus
from app.errors import StaleAttempt
from app.services import task_views
from app.services.events import Event
from app.services.retry import RetryPolicy
from app.services.states import ACTIVE
from app.services.task_views import TaskView

DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Fence:
    """What a status report claims to be: the attempt and/or worker it comes from."""

    attempt: int | None = None
    worker_id: uuid.UUID | None = None


def check_fence(task: Task, fence: Fence | None) -> None:
    """Raise StaleAttempt when the report names an attempt or worker that is not current.

    Clients that send neither (the zndraw client) are fenced by the state machine alone:
    a retried task is pending and worker-less, so their late report cannot apply."""
    if fence is None:
        return
    if fence.attempt is not None and fence.attempt != task.attempt:
        raise StaleAttempt(
            f"Task '{task.id}' is at attempt {task.attempt}; report names attempt {fence.attempt}"
        )
    if fence.worker_id is not None and fence.worker_id != task.worker_id:
        raise StaleAttempt(f"Task '{task.id}' is not held by worker '{fence.worker_id}'")


def _retry_values(task: Task, error: str | None, policy: RetryPolicy) -> dict[str, Any]:
    return {
        "status": "pending",
        "attempt": task.attempt + 1,
        "run_at": utcnow_plus(policy.delay(task.attempt)),
        "worker_id": None,
        "claimed_at": None,
        "started_at": None,
        "completed_at": None,
        "error": error or task.error,
    }


async def retry_failed(
    session: AsyncSession, task: Task, error: str | None, policy: RetryPolicy = DEFAULT_POLICY
) -> tuple[TaskView, list[Event]] | None:
    """A failure of `task` (locked by the caller): back to pending if attempts remain,
    else None and the caller fails it as the contract says. Never commits."""
    if task.internal or not RetryPolicy.may_retry(task.attempt, task.max_attempts):
        return None
    retried = await task_views.update_row(session, task.seq, _retry_values(task, error, policy))
    position = await task_views.queue_position(session, retried)
    events: list[Event] = [task_views.status_event(retried, position), task_views.changed(retried)]
    return TaskView(retried, position), events


async def fail_lost_tasks(
    session: AsyncSession,
    worker_ids: Sequence[uuid.UUID],
    error: str,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[Event]:
    """The claimed/running tasks of lost workers: retried while attempts remain, else
    failed with `error` (tasks keep worker_id, REST.md DELETE /workers). Never commits."""
    active = [str(s) for s in ACTIVE]
    held = (
        (
            await session.execute(
                select(Task)
                .where(Task.worker_id.in_(list(worker_ids)), Task.status.in_(active))
                .order_by(Task.seq)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    return await fail_held_tasks(session, held, error, policy)


async def fail_held_tasks(
    session: AsyncSession, held: Sequence[Task], error: str, policy: RetryPolicy = DEFAULT_POLICY
) -> list[Event]:
    """Each task (locked by the caller) retried while attempts remain, else failed with
    `error`. Never commits."""
    events: list[Event] = []
    to_fail: list[int] = []
    for task in held:
        retried = await retry_failed(session, task, error, policy)
        if retried is None:
            to_fail.append(task.seq)
        else:
            events.extend(retried[1])
    if to_fail:
        failed = await session.execute(
            update(Task)
            .where(Task.seq.in_(to_fail))
            .values(status="failed", completed_at=utcnow(), error=error)
            .returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        events.extend(task_views.status_events(failed.scalars().all()))
    return events
