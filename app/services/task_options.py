"""Submit options beyond the contract (priority, due time, attempts, idempotency key) and
the insert that honours them. Defaults reproduce the contract's plain submit exactly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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
    statement = _insert(session).values(list(rows))
    if any(row.get("idempotency_key") is not None for row in rows):
        # Concurrent submits of one key: the loser waits for the winner's commit, then
        # inserts nothing and reads the winner's row below.
        statement = statement.on_conflict_do_nothing(index_elements=list(IDEMPOTENCY_COLUMNS))
    result = await session.execute(
        statement.returning(Task).execution_options(populate_existing=True)
    )
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
