"""The error inbox's reads: failed tasks grouped by fingerprint with exact counts, and a
group's tasks a batch at a time. Both read only ix_tasks_failed_fingerprint (migration
0010), so their cost follows the number of failed tasks, never the size of the table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.db.types import UTCDateTime
from app.services.tasks.fingerprints import failure_label
from app.services.tasks.states import TaskStatus


@dataclass
class FailureGroup:
    fingerprint: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    jobs: set[str] = field(default_factory=set)
    label: str = ""  # failure_label of one of its tasks (all of them share it)
    sample: str = ""  # the newest task's error

    def add(self, job: str, count: int, first: datetime | None, last: datetime | None) -> None:
        self.jobs.add(job)
        self.count += count
        self.first_seen = min(_known(self.first_seen, first), default=None)
        self.last_seen = max(_known(self.last_seen, last), default=None)


@dataclass(frozen=True)
class Mark:
    """Where a walk through a group stopped: the last task's (created_at, seq)."""

    created_at: datetime
    seq: int


def _known(*values: datetime | None) -> list[datetime]:
    return [v for v in values if v is not None]


def _failed() -> ColumnElement[bool]:
    # Spelled as the index's predicate, so that both dialects choose the partial index.
    return Task.status == TaskStatus.FAILED.value


async def groups(db: AsyncSession) -> list[FailureGroup]:
    """Every failure group with its exact count, first and last failure and jobs, the
    largest first. One pass over the index (no table rows), then one row per group."""
    rows = await db.execute(
        select(
            Task.error_fingerprint,
            Task.job_name,
            func.count(),
            func.min(Task.completed_at),
            func.max(Task.completed_at),
        )
        .where(_failed(), Task.error_fingerprint.is_not(None))
        .group_by(Task.error_fingerprint, Task.job_name)
    )
    found: dict[str, FailureGroup] = {}
    for fingerprint, job, count, first, last in rows:
        found.setdefault(fingerprint, FailureGroup(fingerprint)).add(job, count, first, last)
    await _describe(db, found)
    return sorted(found.values(), key=lambda g: (-g.count, g.label))


async def _describe(db: AsyncSession, found: dict[str, FailureGroup]) -> None:
    """Labels each group from its newest task: one index probe per group."""
    if not found:
        return
    newest = [
        select(Task.seq)
        .where(_failed(), Task.error_fingerprint == fingerprint)
        .order_by(Task.created_at.desc(), Task.seq.desc())
        .limit(1)
        .scalar_subquery()
        for fingerprint in found
    ]
    samples = await db.execute(
        select(Task.error_fingerprint, Task.error, Task.traceback).where(Task.seq.in_(newest))
    )
    for fingerprint, error, traceback in samples:
        group = found[fingerprint]
        group.label = failure_label(error, traceback)
        group.sample = error or ""


async def group_batch(
    db: AsyncSession, fingerprint: str, after: Mark | None, limit: int
) -> tuple[list[uuid.UUID], Mark | None]:
    """The next `limit` failed tasks of a group after `after`, oldest first, and where
    they end (None: none left). Walking by the key passes over tasks an action left
    failed (refused), so a walk ends however many are refused."""
    statement = select(Task.id, Task.created_at, Task.seq).where(
        _failed(), Task.error_fingerprint == fingerprint
    )
    if after is not None:
        mark = tuple_(literal(after.created_at, UTCDateTime()), literal(after.seq))
        statement = statement.where(tuple_(Task.created_at, Task.seq) > mark)
    rows = (await db.execute(statement.order_by(Task.created_at, Task.seq).limit(limit))).all()
    if not rows:
        return [], None
    return [row.id for row in rows], Mark(rows[-1].created_at, rows[-1].seq)
