"""The sweeper's rules (BACKGROUND.md §1), called directly on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.background.sweeper import (
    INTERNAL_TIMEOUT,
    fail_stuck_internal_tasks,
    run_forever,
    sweep_stale_workers,
)
from app.db.models import Job, Task, Worker, WorkerJob
from app.services.events import JobsInvalidate, TaskStatusEvent
from app.services.workers import WORKER_DISCONNECTED
from app.state import Core
from tests.factories import make_job, make_task, make_user, make_worker

LONG_AGO = timedelta(minutes=10)
TIMEOUT = timedelta(seconds=60)


def ago(delta: timedelta) -> datetime:
    return datetime.now(UTC) - delta


async def stale_worker(session: Any, user: Any) -> Worker:
    worker = await make_worker(session, user)
    worker.last_heartbeat = ago(LONG_AGO)
    await session.flush()
    return worker


async def test_stale_worker_gets_the_cleanup_cascade_and_its_events(core: Core) -> None:
    async with core.sessionmaker() as session:
        user = await make_user(session)
        worker = await stale_worker(session, user)
        job = await make_job(session, "r1", workers=(worker,))
        claimed = await make_task(session, job, status="claimed", worker_id=worker.id)
        running = await make_task(session, job, status="running", worker_id=worker.id)
        events = await sweep_stale_workers(session, TIMEOUT)
        await session.commit()
    async with core.sessionmaker() as session:
        assert await session.get(Worker, worker.id) is None
        links = await session.scalars(select(WorkerJob).where(WorkerJob.job_id == job.id))
        assert list(links) == []
        for task in (claimed, running):
            row = (await session.execute(select(Task).where(Task.id == task.id))).scalar_one()
            assert (row.status, row.error) == ("failed", WORKER_DISCONNECTED)
            assert row.completed_at is not None
        assert (await session.get(Job, job.id)).deleted  # type: ignore[union-attr]
    failed = {e.id for e in events if isinstance(e, TaskStatusEvent) and e.status == "failed"}
    assert failed == {str(claimed.id), str(running.id)}
    assert JobsInvalidate("r1") in events


async def test_pending_tasks_of_a_dead_worker_stay_pending(core: Core) -> None:
    async with core.sessionmaker() as session:
        user = await make_user(session)
        worker = await stale_worker(session, user)
        job = await make_job(session, "r1", workers=(worker,))
        pending = await make_task(session, job)
        await sweep_stale_workers(session, TIMEOUT)
        await session.commit()
    async with core.sessionmaker() as session:
        row = (await session.execute(select(Task).where(Task.id == pending.id))).scalar_one()
        assert row.status == "pending"
        assert not (await session.get(Job, job.id)).deleted  # type: ignore[union-attr]


async def test_worker_with_a_recent_heartbeat_is_not_swept(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        assert await sweep_stale_workers(session, TIMEOUT) == []
        await session.commit()
        assert await session.get(Worker, worker.id) is not None


async def test_worker_that_never_heartbeated_is_stale_after_the_timeout(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        await session.commit()
    await asyncio.sleep(0.05)
    async with core.sessionmaker() as session:
        await sweep_stale_workers(session, timedelta(seconds=0.01))
        await session.commit()
        assert await session.get(Worker, worker.id) is None


async def test_stuck_internal_tasks_fail_with_internal_worker_timeout(core: Core) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session, "@internal", "modifiers", "Stuck")
        never_started = await make_task(
            session, job, room_id="r1", status="claimed", created_at=ago(LONG_AGO)
        )
        long_running = await make_task(
            session, job, room_id="r1", status="running", started_at=ago(LONG_AGO)
        )
        fresh = await make_task(
            session, job, room_id="r1", status="running", started_at=ago(timedelta(0))
        )
        events = await fail_stuck_internal_tasks(session, TIMEOUT)
        await session.commit()
    async with core.sessionmaker() as session:
        rows = {t.id: t for t in await session.scalars(select(Task).where(Task.job_id == job.id))}
    for task in (never_started, long_running):
        assert (rows[task.id].status, rows[task.id].error) == ("failed", INTERNAL_TIMEOUT)
        assert rows[task.id].completed_at is not None
    assert rows[fresh.id].status == "running"
    status_events = [e for e in events if isinstance(e, TaskStatusEvent)]
    assert {e.id for e in status_events} == {str(never_started.id), str(long_running.id)}
    assert {e.room for e in status_events} == {"room:r1"}


async def test_external_running_tasks_are_never_timed_out(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        job = await make_job(session, "r1", workers=(worker,))
        task = await make_task(
            session, job, status="running", worker_id=worker.id, started_at=ago(LONG_AGO)
        )
        assert await fail_stuck_internal_tasks(session, timedelta(0)) == []
        await session.commit()
        row = (await session.execute(select(Task).where(Task.id == task.id))).scalar_one()
        assert row.status == "running"


class FlakyLeader:
    """Raises on its first call, then leads: the loop must survive the failure."""

    def __init__(self) -> None:
        self.calls = 0

    async def lead(self) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database went away")
        return True

    async def release(self) -> None:
        return None


async def test_failing_pass_is_logged_and_the_loop_goes_on(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await stale_worker(session, await make_user(session))
        await session.commit()
    settings = core.settings.model_copy(update={"sweeper_interval_seconds": 0.05})
    loop = asyncio.create_task(
        run_forever(settings, core.sessionmaker, core.publisher, FlakyLeader())
    )
    try:
        for _ in range(100):
            async with core.sessionmaker() as session:
                if await session.get(Worker, worker.id) is None:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the loop stopped after a failing pass")
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
