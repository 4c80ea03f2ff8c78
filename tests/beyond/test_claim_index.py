"""On PostgreSQL the store's claim reads ix_tasks_claimable (also for a worker on several
jobs) and the scheduler pass reads ix_tasks_pending_due, so neither grows with the backlog
(from EXPLAIN)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from app.db.asyncpg_args import asyncpg_connect_args
from app.db.store import postgres_sql as sql
from app.state import Core
from tests.factories import make_job, make_user, make_worker

PENDING_PER_JOB = 3000


async def _seed(session: Any, job_id: uuid.UUID) -> None:
    await session.execute(
        text(
            "INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, internal,"
            " created_at, priority, run_at, attempt, max_attempts)"
            " SELECT gen_random_uuid(), :job, 'x', 'room1', 'pending', '{}', false,"
            " clock_timestamp(), (g % 3), clock_timestamp(), 1, 1 FROM generate_series(1, :n) g"
        ),
        {"job": job_id, "n": PENDING_PER_JOB},
    )


@pytest.fixture
def backend() -> str:
    """EXPLAIN plans are PostgreSQL's: this module runs on PostgreSQL only."""
    return "postgresql"


async def explain(core: Core, statement: str, *args: Any) -> str:
    """The plan PostgreSQL picks for one of the store's statements, with these values."""
    connection = await asyncpg.connect(**asyncpg_connect_args(core.settings.effective_database_url))
    try:
        await connection.set_type_codec(
            "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
        )
        await connection.execute("ANALYZE tasks")
        rows = await connection.fetch(f"EXPLAIN {statement}", *args)
    finally:
        await connection.close()
    return "\n".join(row[0] for row in rows)


async def test_claim_query_uses_the_claimable_index(core: Core) -> None:
    async with core.sessionmaker() as session:
        user = await make_user(session)
        worker = await make_worker(session, user)
        for name in ("A", "B", "C"):
            job = await make_job(session, name=name, workers=(worker,))
            await _seed(session, job.id)
        await session.commit()
    plan = await explain(core, sql.CLAIM, str(worker.id), str(user.id), 1, 300.0)
    assert "ix_tasks_claimable" in plan, plan
    assert "Seq Scan on tasks" not in plan, plan
    # One index probe per job, no sort over the job's pending rows.
    assert "Sort" not in plan or "Sort Key: head" in plan, plan


async def test_scheduler_pass_reads_the_due_index(core: Core) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session)
        await session.execute(
            text(
                "INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, internal,"
                " created_at, priority, run_at, attempt, max_attempts)"
                " SELECT gen_random_uuid(), :job, 'x', 'room1', 'pending', '{}', false,"
                " clock_timestamp() - make_interval(secs => 2 * g), 0,"
                " clock_timestamp() - make_interval(secs => g), 1, 1"
                " FROM generate_series(1, :n) g"
            ),
            {"job": job.id, "n": PENDING_PER_JOB * 3},
        )
        await session.commit()
        now = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
    plan = await explain(core, sql.DUE_HEADS_SINCE, now, 5.0, 0.01)
    assert "ix_tasks_pending_due" in plan, plan
    assert "Seq Scan on tasks" not in plan, plan
