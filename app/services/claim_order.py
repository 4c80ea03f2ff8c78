"""Which pending task a claim takes next: due tasks of the worker's jobs by priority, then
due time, then insertion, read from ix_tasks_claimable so the cost does not grow with the
backlog."""

from __future__ import annotations

import uuid

from sqlalchemy import ScalarSelect, select, true

from app.db.models import Task, WorkerJob
from app.db.types import utcnow

CLAIM_ORDER = (Task.priority.desc(), Task.run_at, Task.seq)


def _claimable() -> list[object]:
    return [Task.status == "pending", Task.internal.is_(False), Task.run_at <= utcnow()]


def next_claimable(dialect: str, worker_id: uuid.UUID) -> ScalarSelect[int]:
    """The `seq` of the task to claim, as a scalar sub-select locked `FOR UPDATE SKIP LOCKED`.

    PostgreSQL: one LATERAL probe per linked job takes the head of that job's slice of the
    index, and the heads are compared; a plain `job_id IN (...) ORDER BY ... LIMIT 1` would
    read and sort every pending row of those jobs. SQLite has no LATERAL and a single
    writer, so it keeps the plain form.
    """
    if dialect != "postgresql":
        jobs = select(WorkerJob.job_id).where(WorkerJob.worker_id == worker_id)
        return (
            select(Task.seq)
            .where(Task.job_id.in_(jobs), *_claimable())  # type: ignore[arg-type]
            .order_by(*CLAIM_ORDER)
            .limit(1)
            .scalar_subquery()
        )
    linked = select(WorkerJob.job_id).where(WorkerJob.worker_id == worker_id).subquery("linked")
    head = (
        select(Task.seq, Task.priority, Task.run_at)
        .where(Task.job_id == linked.c.job_id, *_claimable())  # type: ignore[arg-type]
        .order_by(*CLAIM_ORDER)
        .limit(1)
        .with_for_update(skip_locked=True)
        .lateral("head")
    )
    return (
        select(head.c.seq)
        .select_from(linked)
        .join(head, true())
        .order_by(head.c.priority.desc(), head.c.run_at, head.c.seq)
        .limit(1)
        .scalar_subquery()
    )
