"""The error inbox's reads: failed tasks grouped by fingerprint with exact counts, and a
group's tasks a batch at a time. Both walk ix_tasks_failed_fingerprint (migration 0010),
so their cost follows the number of failed tasks, never the size of the table; the
groups' labels cost one row each."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_
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
    newest_seq: int = 0

    def add(
        self, job: str, count: int, first: datetime | None, last: datetime | None, seq: int
    ) -> None:
        self.jobs.add(job)
        self.count += count
        self.newest_seq = max(self.newest_seq, seq)
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


def counts_statement() -> Select[
    tuple[str | None, str, int, datetime | None, datetime | None, int]
]:
    """Per (fingerprint, job): how many failed, first and last failure, the newest task.
    Every column is in the index, so PostgreSQL answers from the index alone."""
    return (
        select(
            Task.error_fingerprint,
            Task.job_name,
            func.count(),
            func.min(Task.completed_at),
            func.max(Task.completed_at),
            func.max(Task.seq),
        )
        .where(_failed(), Task.error_fingerprint.is_not(None))
        .group_by(Task.error_fingerprint, Task.job_name)
    )


async def groups(db: AsyncSession) -> list[FailureGroup]:
    """Every failure group with its exact count, first and last failure and jobs, the
    largest first. One pass over the index (no table rows), then one row per group."""
    found: dict[str, FailureGroup] = {}
    for fingerprint, job, count, first, last, seq in await db.execute(counts_statement()):
        assert fingerprint is not None  # the statement's filter
        found.setdefault(fingerprint, FailureGroup(fingerprint)).add(job, count, first, last, seq)
    await _describe(db, found)
    return sorted(found.values(), key=lambda g: (-g.count, g.label))


def samples_statement(seqs: Iterable[int]) -> Select[tuple[str | None, str | None, str | None]]:
    """The newest failed task of each group, by primary key (a list of literals plans in
    no time, where a subquery per group would cost more to plan than to run)."""
    return select(Task.error_fingerprint, Task.error, Task.traceback).where(
        Task.seq.in_(list(seqs))
    )


async def _describe(db: AsyncSession, found: dict[str, FailureGroup]) -> None:
    """Labels each group from its newest task."""
    if not found:
        return
    newest = [group.newest_seq for group in found.values()]
    for fingerprint, error, traceback in await db.execute(samples_statement(newest)):
        assert fingerprint is not None
        group = found[fingerprint]
        group.label = failure_label(error, traceback)
        group.sample = error or ""


def batch_statement(
    fingerprint: str, after: Mark | None, limit: int
) -> Select[tuple[uuid.UUID, datetime, int]]:
    statement = select(Task.id, Task.created_at, Task.seq).where(
        _failed(), Task.error_fingerprint == fingerprint
    )
    if after is not None:
        mark = tuple_(literal(after.created_at, UTCDateTime()), literal(after.seq))
        statement = statement.where(tuple_(Task.created_at, Task.seq) > mark)
    return statement.order_by(Task.created_at, Task.seq).limit(limit)


async def group_batch(
    db: AsyncSession, fingerprint: str, after: Mark | None, limit: int
) -> tuple[list[uuid.UUID], Mark | None]:
    """The next `limit` failed tasks of a group after `after`, oldest first, and where
    they end (None: none left). Walking by the key passes over tasks an action left
    failed (refused), so a walk ends however many are refused."""
    rows = (await db.execute(batch_statement(fingerprint, after, limit))).all()
    if not rows:
        return [], None
    return [row.id for row in rows], Mark(rows[-1].created_at, rows[-1].seq)
