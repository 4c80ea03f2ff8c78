"""On PostgreSQL the claim reads ix_tasks_claimable (also for a worker on several jobs) and the
scheduler pass reads ix_tasks_pending_due, so neither grows with the backlog (from EXPLAIN)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, text

from app.services import tasks
from app.services.actors import Actor
from app.services.scheduler import wake_due_tasks
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


async def test_claim_query_uses_the_claimable_index(core: Core) -> None:
    async with core.sessionmaker() as session:
        user = await make_user(session)
        worker = await make_worker(session, user)
        for name in ("A", "B", "C"):
            job = await make_job(session, name=name, workers=(worker,))
            await _seed(session, job.id)
        await session.commit()
        await session.execute(text("ANALYZE tasks"))
        await session.commit()
        captured: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE TASKS"):
                captured.append((statement, params))

        sync_engine = core.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", capture)
        try:
            view, _ = await tasks.claim(session, Actor(user.id, "operator"), worker.id)
        finally:
            event.remove(sync_engine, "before_cursor_execute", capture)
        assert view is not None
        statement, params = captured[0]
        connection = await session.connection()
        plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", params)
        lines = [row[0] for row in plan.all()]
        await session.rollback()
    text_plan = "\n".join(lines)
    assert "ix_tasks_claimable" in text_plan, text_plan
    assert "Seq Scan on tasks" not in text_plan, text_plan
    # One index probe per job, no sort over the job's pending rows.
    assert "Sort" not in text_plan or "Sort Key: head" in text_plan, text_plan


async def test_scheduler_pass_reads_the_due_index(core: Core) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session)
        await session.execute(
            text(
                "INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, internal,"
                " created_at, priority, run_at, attempt, max_attempts)"
                " SELECT gen_random_uuid(), :job, 'x', 'room1', 'pending', '{}', false,"
                " clock_timestamp(), 0, clock_timestamp() - make_interval(secs => g), 1, 1"
                " FROM generate_series(1, :n) g"
            ),
            {"job": job.id, "n": PENDING_PER_JOB * 3},
        )
        await session.commit()
        await session.execute(text("ANALYZE tasks"))
        await session.commit()
        captured: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if "GROUP BY" in statement:
                captured.append((statement, params))

        sync_engine = core.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", capture)
        try:
            now = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
            await wake_due_tasks(session, now)
        finally:
            event.remove(sync_engine, "before_cursor_execute", capture)
        statement, params = captured[0]
        connection = await session.connection()
        plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", params)
        text_plan = "\n".join(row[0] for row in plan.all())
        await session.rollback()
    assert "ix_tasks_pending_due" in text_plan, text_plan
    assert "Seq Scan on tasks" not in text_plan, text_plan
