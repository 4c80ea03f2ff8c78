"""Submit options beyond the contract (priority, due time, attempts, idempotency key) and
the insert that honours them. Defaults reproduce the contract's plain submit exactly."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.db.dialect import dialect_name
from app.db.models import Task
from app.db.types import utcnow, utcnow_plus

IDEMPOTENCY_COLUMNS = ("job_id", "room_id", "idempotency_key")


@dataclass(frozen=True)
class TaskOptions:
    priority: int = 0
    run_at: datetime | None = None
    delay_seconds: float | None = None
    max_attempts: int = 1
    idempotency_key: str | None = None

    def columns(self) -> dict[str, Any]:
        """Column values for the insert; the due time is the database's clock unless the
        client named an absolute time."""
        run_at: Any = utcnow()
        if self.run_at is not None:
            run_at = self.run_at
        elif self.delay_seconds:
            run_at = utcnow_plus(self.delay_seconds)
        return {
            "priority": self.priority,
            "run_at": run_at,
            "max_attempts": self.max_attempts,
            "idempotency_key": self.idempotency_key,
        }


def _insert(session: AsyncSession) -> Any:
    module: Any = postgresql if dialect_name(session) == "postgresql" else sqlite
    return module.insert(Task)


async def insert_tasks(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> tuple[list[Task], list[bool]]:
    """Insert the rows in one statement; rows whose idempotency key already exists for the
    job and room are not inserted and the existing task stands in for them.

    Returns the tasks in the order of `rows` and, per row, whether it was created.
    """
    statement = _insert(session)
    if any(row.get("idempotency_key") is not None for row in rows):
        # Concurrent submits of one key: the loser waits for the winner's commit, then
        # inserts nothing and reads the winner's row below.
        statement = statement.on_conflict_do_nothing(index_elements=list(IDEMPOTENCY_COLUMNS))
    statement = statement.returning(Task).execution_options(populate_existing=True)
    # A single row as plain VALUES: that compiled form is cached across submits, while a
    # multi-row VALUES clause is compiled anew every time.
    values: Any = rows[0] if len(rows) == 1 else list(rows)
    result = await session.execute(statement.values(values))
    by_id = {task.id: task for task in result.scalars().all()}
    missing = [row for row in rows if row["id"] not in by_id]
    existing = await _existing(session, missing)
    tasks: list[Task] = []
    created: list[bool] = []
    for row in rows:
        task = by_id.get(row["id"])
        created.append(task is not None)
        tasks.append(task or existing[_key(row)])
    return tasks, created


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column] for column in IDEMPOTENCY_COLUMNS)


async def _existing(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> dict[tuple[Any, ...], Task]:
    if not rows:
        return {}
    match = or_(
        *(
            and_(
                Task.job_id == row["job_id"],
                Task.room_id == row["room_id"],
                Task.idempotency_key == row["idempotency_key"],
            )
            for row in rows
        )
    )
    found = (await session.execute(select(Task).where(match))).scalars().all()
    return {(t.job_id, t.room_id, t.idempotency_key): t for t in found}


# PostgreSQL bulk path: the rows travel as one array per column and are unpacked by
# unnest(), so a batch of 1,000 is one short statement with a fixed text (prepared once)
# instead of a 12,000-parameter VALUES list that SQLAlchemy must compile per batch.
PG_BULK_INSERT = """
INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, created_by, internal,
                   created_at, claimed_at, priority, run_at, attempt, max_attempts,
                   idempotency_key)
SELECT u.id, CAST(:job_id AS uuid), CAST(:job_name AS text), CAST(:room_id AS text),
       CAST(:status AS text), CAST(u.payload AS jsonb), CAST(:created_by AS uuid),
       CAST(:internal AS boolean), clock_timestamp(),
       CASE WHEN CAST(:internal AS boolean) THEN clock_timestamp() END, u.priority,
       COALESCE(u.run_at, clock_timestamp() + make_interval(secs => COALESCE(u.delay, 0))),
       1, u.max_attempts, u.idempotency_key
FROM unnest(CAST(:ids AS uuid[]), CAST(:payloads AS text[]), CAST(:priorities AS int[]),
            CAST(:run_ats AS timestamptz[]), CAST(:delays AS float8[]),
            CAST(:max_attempts AS int[]), CAST(:keys AS text[]))
     AS u(id, payload, priority, run_at, delay, max_attempts, idempotency_key)
"""
PG_ON_KEY_CONFLICT = " ON CONFLICT (job_id, room_id, idempotency_key) DO NOTHING"


async def insert_tasks_pg(
    session: AsyncSession,
    common: dict[str, Any],
    ids: Sequence[uuid.UUID],
    payloads: Sequence[dict[str, Any]],
    options: Sequence[TaskOptions],
) -> tuple[list[Task], list[bool]]:
    """insert_tasks for many rows of one job and room on PostgreSQL: tasks in the order
    of `ids`, created flags, existing tasks standing in for known idempotency keys."""
    sql = PG_BULK_INSERT
    if any(o.idempotency_key is not None for o in options):
        sql += PG_ON_KEY_CONFLICT
    # The payloads are not read back: decoding 1,000 JSON documents we just encoded is
    # the costliest part of the RETURNING, so they are set from the request instead.
    returned = [c for c in Task.__table__.columns if c.name != "payload"]
    returning = ", ".join(c.name for c in returned)
    statement = text(f"{sql} RETURNING {returning}").columns(*returned)
    params = {
        "job_id": common["job_id"],
        "job_name": common["job_name"],
        "room_id": common["room_id"],
        "status": common["status"],
        "created_by": common["created_by"],
        "internal": common["internal"],
        "ids": list(ids),
        "payloads": [orjson.dumps(p).decode() for p in payloads],
        "priorities": [o.priority for o in options],
        "run_ats": [o.run_at for o in options],
        "delays": [o.delay_seconds for o in options],
        "max_attempts": [o.max_attempts for o in options],
        "keys": [o.idempotency_key for o in options],
    }
    result = await session.execute(
        select(Task).from_statement(statement).execution_options(populate_existing=True),
        params,
    )
    by_id = {task.id: task for task in result.scalars().all()}
    payload_of = dict(zip(ids, payloads, strict=True))
    for task in by_id.values():
        set_committed_value(task, "payload", payload_of[task.id])
    missing = {
        task_id: {
            "job_id": common["job_id"],
            "room_id": common["room_id"],
            "idempotency_key": option.idempotency_key,
        }
        for task_id, option in zip(ids, options, strict=True)
        if task_id not in by_id
    }
    existing = await _existing(session, list(missing.values()))
    tasks = [by_id[i] if i in by_id else existing[_key(missing[i])] for i in ids]
    return tasks, [i in by_id for i in ids]
