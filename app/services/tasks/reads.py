"""Task lists: pages of a room's or a job's tasks, newest first, with queue positions.

Lists are not the hot path: they read through SQLAlchemy Core (either database). The
page's rows are one query, its total comes from the trigger-kept counters (no count over
the table), and the queue positions of all its pending tasks are one more query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.models import Task, TaskCount
from app.services import jobs as jobs_service
from app.services.pages import Page, PageRequest
from app.services.rooms import validate_room_id
from app.services.tasks.records import COLUMNS, TaskRecord, TaskView
from app.services.tasks.scope import owned_by
from app.services.tasks.states import TaskStatus

_UUID_COLUMNS = frozenset({"id", "job_id", "created_by", "worker_id"})
_RAW_JSON = frozenset({"payload", "result"})


def _column(name: str) -> Any:
    column = getattr(Task, name)
    # The JSON text as stored: responses embed it without parsing it.
    return cast(column, Text).label(name) if name in _RAW_JSON else column


def _selectable() -> Select[Any]:
    return select(*(_column(name) for name in COLUMNS))


def record_of(row: Sequence[Any]) -> TaskRecord:
    values = [
        str(v) if v is not None and name in _UUID_COLUMNS else v
        for name, v in zip(COLUMNS, row, strict=True)
    ]
    return TaskRecord(*values)  # type: ignore[arg-type]  # column types match COLUMNS


async def list_in_room(
    session: AsyncSession,
    room_id: str,
    status: TaskStatus | None,
    page: PageRequest,
    readable_by: uuid.UUID | None = None,
) -> Page[TaskView]:
    """Tasks submitted to the room (no @global merging), newest first; with
    `readable_by`, only those that user may read (scope.py)."""
    validate_room_id(room_id)
    where = [Task.room_id == room_id]
    return await _page(session, where, [TaskCount.room_id == room_id], status, page, readable_by)


async def list_for_job(
    session: AsyncSession,
    room_id: str,
    job_name: str,
    status: TaskStatus | None,
    page: PageRequest,
    readable_by: uuid.UUID | None = None,
) -> Page[TaskView]:
    """Tasks of one job submitted to this room, newest first."""
    validate_room_id(room_id)
    job = await jobs_service.resolve(session, job_name)
    where = [Task.job_id == job.id, Task.room_id == room_id]
    counted = [TaskCount.job_name == job.full_name, TaskCount.room_id == room_id]
    return await _page(session, where, counted, status, page, readable_by)


async def list_matching(
    session: AsyncSession,
    room_id: str | None,
    job_name: str | None,
    status: TaskStatus | None,
    page: PageRequest,
) -> Page[TaskView]:
    """Tasks of every room and job, or of one room, one job or both, newest first: the
    admin's view (the CLI), so no read scope."""
    where: list[ColumnElement[bool]] = []
    counted: list[ColumnElement[bool]] = []
    if room_id is not None:
        validate_room_id(room_id)
        where.append(Task.room_id == room_id)
        counted.append(TaskCount.room_id == room_id)
    if job_name is not None:
        job = await jobs_service.resolve(session, job_name)
        where.append(Task.job_id == job.id)
        counted.append(TaskCount.job_name == job.full_name)
    return await _page(session, where, counted, status, page, None)


async def _page(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    counted: list[ColumnElement[bool]],
    status: TaskStatus | None,
    page: PageRequest,
    readable_by: uuid.UUID | None,
) -> Page[TaskView]:
    if status is not None:
        where.append(Task.status == str(status))
        counted.append(TaskCount.status == str(status))
    if readable_by is None:
        total = int(
            await session.scalar(select(func.coalesce(func.sum(TaskCount.n), 0)).where(*counted))
            or 0
        )
    else:
        # The counters know no owners: a scoped list counts its own rows.
        where.append(owned_by(readable_by))
        total = int(await session.scalar(select(func.count()).select_from(Task).where(*where)) or 0)
    if page.limit == 0 or page.offset >= total:
        return Page([], total, page.limit, page.offset)
    query = (
        _selectable()
        .where(*where)
        .order_by(Task.created_at.desc(), Task.seq.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    tasks = [record_of(row) for row in (await session.execute(query)).all()]
    positions = await queue_positions(session, tasks)
    return Page([TaskView(t, positions.get(t.seq)) for t in tasks], total, page.limit, page.offset)


async def queue_positions(session: AsyncSession, tasks: Sequence[TaskRecord]) -> dict[int, int]:
    """The queue positions of the pending ones among `tasks`, in one query: each is its
    job's pending total (from the counters) minus the tasks behind it in claim order,
    counted over two ranges of ix_tasks_claimable. A page lists the newest tasks first,
    which have the fewest behind them."""
    pending = [t for t in tasks if t.status == TaskStatus.PENDING]
    if not pending:
        return {}
    row = aliased(Task)
    later = aliased(Task)

    def behind(*order: ColumnElement[bool]) -> Any:
        return (
            select(func.count())
            .select_from(later)
            .where(later.status == "pending", later.job_id == row.job_id, *order)
            .scalar_subquery()
        )

    total = (
        select(func.coalesce(func.sum(TaskCount.n), 0))
        .where(TaskCount.job_name == row.job_name, TaskCount.status == "pending")
        .scalar_subquery()
    )
    lower = behind(later.priority < row.priority)
    same = behind(
        later.priority == row.priority,
        tuple_(later.run_at, later.seq) > tuple_(row.run_at, row.seq),
    )
    rows = await session.execute(
        select(row.seq, total - lower - same).where(row.seq.in_([t.seq for t in pending]))
    )
    return {int(seq): int(position) for seq, position in rows.all()}
