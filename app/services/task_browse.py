"""The dashboard's task list: filters, an id-prefix search and keyset paging.

Pages are cut by the key (created_at, seq), never by OFFSET, so the thousandth page costs
what the first does. Every filter has an index that starts with its column and ends with
(created_at, seq) (models.Task, migration 0008): the database walks one index range in
order and stops after a page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Task
from app.db.types import UTCDateTime
from app.errors import BadRequest

Order = Literal["newest", "oldest"]
Direction = Literal["next", "prev"]
HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    seq: int

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}~{self.seq}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            stamp, seq = text.rsplit("~", 1)
            return cls(_aware(datetime.fromisoformat(stamp)), int(seq))
        except ValueError:
            raise BadRequest(f"Invalid page cursor '{text}'") from None


@dataclass(frozen=True)
class Filters:
    room: str | None = None
    job: str | None = None
    status: str | None = None
    worker: uuid.UUID | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    id_prefix: str | None = None
    # An error inbox group: failed tasks of this fingerprint (ix_tasks_failed_fingerprint).
    fingerprint: str | None = None
    # Under the `own` read scope: the user whose tasks alone are listed.
    owner: ColumnElement[bool] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    # Cursors of the first and last rows shown, when there is a page that way.
    before: str | None
    after: str | None


def id_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The UUIDs that start with `prefix` (dashes ignored) as an inclusive range: a range
    on the id column uses its unique index on both dialects (PostgreSQL's uuid orders by
    its bytes; SQLite stores the 32 lowercase hex digits, whose text order is the same)."""
    digits = prefix.replace("-", "").strip().lower()
    if not digits or len(digits) > 32 or not set(digits) <= HEX:
        raise BadRequest(f"'{prefix}' is not the start of a task id")
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _where(filters: Filters) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.room:
        found.append(Task.room_id == filters.room)
    if filters.job:
        # By the job's id, so that ix_tasks_job_created serves it (the name is long).
        job_id = select(Job.id).where(Job.full_name == filters.job).scalar_subquery()
        found.append(Task.job_id == job_id)
    if filters.status:
        found.append(Task.status == filters.status)
    if filters.worker is not None:
        found.append(Task.worker_id == filters.worker)
    if filters.submitted_from is not None:
        found.append(Task.created_at >= _aware(filters.submitted_from))
    if filters.submitted_to is not None:
        found.append(Task.created_at <= _aware(filters.submitted_to))
    if filters.id_prefix:
        low, high = id_range(filters.id_prefix)
        found.append(and_(Task.id >= low, Task.id <= high))
    if filters.fingerprint:
        # Only failed tasks carry one; the status term lets the partial index serve.
        found.append(Task.status == "failed")
        found.append(Task.error_fingerprint == filters.fingerprint)
    if filters.owner is not None:
        found.append(filters.owner)
    return found


def _beyond(cursor: Cursor, later: bool) -> ColumnElement[bool]:
    # A row-value comparison: both dialects read it as one range of the
    # (..., created_at, seq) index, where the spelled-out OR would be a filter.
    key = tuple_(Task.created_at, Task.seq)
    mark = tuple_(literal(cursor.created_at, UTCDateTime()), literal(cursor.seq))
    return key > mark if later else key < mark


def query(
    filters: Filters, order: Order, cursor: Cursor | None, direction: Direction, limit: int
) -> Select[tuple[Task]]:
    """The statement of one page (limit + 1 rows, to know whether another follows)."""
    # Walking backwards ("prev") reads the other way and is turned round by the caller.
    ascending = (order == "oldest") == (direction == "next")
    statement = select(Task).where(*_where(filters))
    if cursor is not None:
        statement = statement.where(_beyond(cursor, later=ascending))
    keys = (Task.created_at, Task.seq) if ascending else (Task.created_at.desc(), Task.seq.desc())
    return statement.order_by(*keys).limit(limit + 1)


async def browse(
    db: AsyncSession,
    filters: Filters,
    order: Order = "newest",
    cursor: Cursor | None = None,
    direction: Direction = "next",
    limit: int = 50,
) -> Page:
    rows = list((await db.scalars(query(filters, order, cursor, direction, limit))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if direction == "prev":
        rows.reverse()
    if not rows:
        return Page([], None, None)
    first = Cursor(rows[0].created_at, rows[0].seq).encode()
    last = Cursor(rows[-1].created_at, rows[-1].seq).encode()
    # Coming from a page, there is always one back the way we came.
    came_back = cursor is not None
    if direction == "next":
        return Page(rows, first if came_back else None, last if more else None)
    return Page(rows, first if more else None, last if came_back else None)
