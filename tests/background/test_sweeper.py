"""The sweeper's rules (BACKGROUND.md §1), called directly on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.background.sweeper import run_forever, sweep_stale_workers
from app.db.models import Job, Task, Worker, WorkerJob
from app.services.events import JobsInvalidate, TaskStatusEvent
from app.services.tasks.transitions import INTERNAL_TIMEOUT, WORKER_DISCONNECTED
from app.state import Core
from tests.factories import make_job, make_task, make_user, make_worker
from tests.recorder import Recorder

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
        await session.commit()
    recorder = Recorder.install(core)
    await sweep_stale_workers(core.tasks, TIMEOUT)
    events = recorder.events
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
        await session.commit()
    await sweep_stale_workers(core.tasks, TIMEOUT)
    async with core.sessionmaker() as session:
        row = (await session.execute(select(Task).where(Task.id == pending.id))).scalar_one()
        assert row.status == "pending"
        assert not (await session.get(Job, job.id)).deleted  # type: ignore[union-attr]


async def test_worker_with_a_recent_heartbeat_is_not_swept(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        await session.commit()
    assert await sweep_stale_workers(core.tasks, TIMEOUT) == []
    async with core.sessionmaker() as session:
        assert await session.get(Worker, worker.id) is not None


async def test_worker_that_never_heartbeated_is_stale_after_the_timeout(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        await session.commit()
    await asyncio.sleep(0.05)
    await sweep_stale_workers(core.tasks, timedelta(seconds=0.01))
    async with core.sessionmaker() as session:
        assert await session.get(Worker, worker.id) is None


async def test_stuck_internal_tasks_fail_with_internal_worker_timeout(core: Core) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session, "@internal", "modifiers", "Stuck")
        long_running = await make_task(
            session, job, room_id="r1", status="running", started_at=ago(LONG_AGO)
        )
        fresh = await make_task(
            session, job, room_id="r1", status="running", started_at=ago(timedelta(0))
        )
        await session.commit()
    recorder = Recorder.install(core)
    await core.tasks.fail_stuck_internal(TIMEOUT.total_seconds())
    async with core.sessionmaker() as session:
        rows = {t.id: t for t in await session.scalars(select(Task).where(Task.job_id == job.id))}
    assert (rows[long_running.id].status, rows[long_running.id].error) == (
        "failed",
        INTERNAL_TIMEOUT,
    )
    assert rows[long_running.id].completed_at is not None
    assert rows[fresh.id].status == "running"
    status_events = [e for e in recorder.events if isinstance(e, TaskStatusEvent)]
    assert {e.id for e in status_events} == {str(long_running.id)}
    assert {e.room for e in status_events} == {"room:r1"}


async def test_stuck_timeout_counts_from_the_start_not_the_creation(core: Core) -> None:
    """An @internal task still waiting in the broker is not stuck: the repair pass re-sends
    it; only time spent running counts."""
    async with core.sessionmaker() as session:
        job = await make_job(session, "@internal", "modifiers", "Queued")
        queued = await make_task(
            session, job, room_id="r1", status="claimed", created_at=ago(LONG_AGO)
        )
        started_late = await make_task(
            session,
            job,
            room_id="r1",
            status="running",
            created_at=ago(LONG_AGO),
            started_at=ago(timedelta(0)),
        )
        await session.commit()
    await core.tasks.fail_stuck_internal(TIMEOUT.total_seconds())
    async with core.sessionmaker() as session:
        rows = {t.id: t for t in await session.scalars(select(Task).where(Task.job_id == job.id))}
    assert rows[queued.id].status == "claimed"
    assert rows[started_late.id].status == "running"


async def test_external_running_tasks_are_never_timed_out(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        job = await make_job(session, "r1", workers=(worker,))
        task = await make_task(
            session, job, status="running", worker_id=worker.id, started_at=ago(LONG_AGO)
        )
        await session.commit()
    await core.tasks.fail_stuck_internal(0)
    async with core.sessionmaker() as session:
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
    loop = asyncio.create_task(run_forever(settings, core.tasks, core.publisher, FlakyLeader()))
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
