"""Retention: the leader deletes finished tasks past the horizon, a batch at a time, and
the counters follow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from app.background import sweeper
from app.db.models import Job, Task
from app.services import stats
from app.state import Core
from tests.factories import make_job

DAY = 24 * 3600.0
OLD = 2500


def row(job: Job, status: str, at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "job_id": job.id,
        "job_name": job.full_name,
        "room_id": "room1",
        "status": status,
        "payload": {},
        "internal": False,
        "created_at": at,
        "completed_at": None if status == "pending" else at,
        "run_at": at,
        "priority": 0,
        "attempt": 1,
        "max_attempts": 1,
    }


async def seed(core: Core) -> None:
    """OLD finished tasks a week old, plus a recent one of each kind and a pending one."""
    week_ago = datetime.now(UTC) - timedelta(days=7)
    now = datetime.now(UTC)
    async with core.sessionmaker() as session:
        job = await make_job(session)
        old = [row(job, ("completed", "failed", "cancelled")[i % 3], week_ago) for i in range(OLD)]
        recent = [row(job, s, now) for s in ("completed", "failed", "cancelled", "pending")]
        await session.execute(Task.__table__.insert(), old + recent)
        await session.commit()


async def remaining(core: Core) -> int:
    async with core.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Task)) or 0)


async def test_retention_deletes_finished_tasks_past_the_horizon(core: Core) -> None:
    await seed(core)
    deleted = await sweeper.apply_retention(core.tasks, DAY)
    assert deleted == OLD
    assert await remaining(core) == 4  # the recent ones and the pending one


async def test_retention_deletes_in_batches_of_a_thousand(core: Core) -> None:
    await seed(core)
    assert await core.store.delete_finished(DAY, 1000) == 1000
    assert await core.store.delete_finished(DAY, 1000) == 1000
    assert await core.store.delete_finished(DAY, 1000) == OLD - 2000
    assert await core.store.delete_finished(DAY, 1000) == 0


async def test_counts_follow_the_deletions(core: Core) -> None:
    await seed(core)
    await sweeper.apply_retention(core.tasks, DAY)
    async with core.sessionmaker() as session:
        counted = await stats.counts(session)
    assert counted["room1:modifiers:Echo"] == {
        "waiting": 0,
        "pending": 1,
        "claimed": 0,
        "running": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
    }


async def test_a_zero_horizon_keeps_everything(core: Core) -> None:
    await seed(core)
    assert await sweeper.apply_retention(core.tasks, 0) == 0
    assert await remaining(core) == OLD + 4


async def test_throughput_minutes_older_than_a_day_are_pruned(core: Core) -> None:
    await seed(core)
    await sweeper.apply_retention(core.tasks, DAY)
    async with core.sessionmaker() as session:
        oldest = await session.scalar(text("SELECT min(minute) FROM task_throughput"))
    assert oldest is not None
    if isinstance(oldest, str):  # SQLite hands back the stored text
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    assert datetime.now(UTC) - oldest < timedelta(days=1, hours=2)
