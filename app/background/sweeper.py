"""The sweeper: stale workers, stuck @internal tasks, lost @internal dispatches, tasks
running past their job's timeout.

Pass functions run in the caller's transaction and return what to publish after commit;
`run_forever` is the loop a server runs while it is the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background.leader import Leader
from app.db.models import Job, Task, Worker
from app.db.types import utcnow
from app.realtime.publisher import Publisher
from app.services import retries, scheduler, task_views, workers
from app.services.events import Event
from app.services.retries import DEFAULT_POLICY
from app.services.retry import RetryPolicy
from app.settings import Settings

log = logging.getLogger(__name__)

INTERNAL_TIMEOUT = "Internal worker timeout"


async def db_now(session: AsyncSession) -> datetime:
    """The database's clock (DESIGN: time is the database's)."""
    now = await session.scalar(select(utcnow()))
    assert now is not None
    return now


async def sweep_stale_workers(
    session: AsyncSession, older_than: timedelta, retry: RetryPolicy = DEFAULT_POLICY
) -> list[Event]:
    """Workers without a heartbeat for `older_than` get the DELETE /workers cascade, all in
    the caller's one transaction (BACKGROUND.md §1, pass 1)."""
    threshold = await db_now(session) - older_than
    stale = (
        await session.execute(select(Worker.id).where(Worker.last_heartbeat < threshold))
    ).scalars()
    ids = list(stale)
    if ids:
        log.info("sweeping %d stale worker(s)", len(ids))
    return await workers.cleanup(session, ids, retry)


async def fail_stuck_internal_tasks(session: AsyncSession, older_than: timedelta) -> list[Event]:
    """@internal tasks claimed or running for longer than `older_than` (from start, else from
    creation) fail with "Internal worker timeout" (pass 2). External tasks are never timed
    out here: their workers' heartbeats govern them."""
    threshold = await db_now(session) - older_than
    result = await session.execute(
        update(Task)
        .where(
            Task.internal.is_(True),
            Task.status.in_(["claimed", "running"]),
            func.coalesce(Task.started_at, Task.created_at) < threshold,
        )
        .values(status="failed", completed_at=utcnow(), error=INTERNAL_TIMEOUT)
        .returning(Task)
        .execution_options(synchronize_session=False)
    )
    return task_views.status_events(result.scalars().all())


async def fail_timed_out_tasks(
    session: AsyncSession, grace: timedelta, retry: RetryPolicy = DEFAULT_POLICY
) -> list[Event]:
    """Running tasks of jobs with a `timeout_seconds` that started more than timeout +
    `grace` ago: their worker is stuck or gone without noticing. They fail under the retry
    rules, and the worker's late report is then refused by the fence or the state machine."""
    now = await db_now(session)
    rows = await session.execute(
        select(Task, Job.timeout_seconds)
        .join(Job, Job.id == Task.job_id)
        .where(
            Task.status == "running",
            Task.internal.is_(False),
            Job.timeout_seconds.is_not(None),
            Task.started_at < now - grace,
        )
        .order_by(Task.seq)
        .with_for_update(of=Task)
    )
    events: list[Event] = []
    for task, timeout in rows.all():
        # Few rows reach here (started before now - grace); the per-job limit is checked
        # in Python because interval arithmetic on a column differs between dialects.
        if task.started_at + timedelta(seconds=timeout) + grace < now:
            error = f"timed out after {timeout:g} s (no report from the worker)"
            events.extend(await retries.fail_held_tasks(session, [task], error, retry))
    return events


async def take_lost_dispatches(session: AsyncSession, grace: timedelta) -> list[uuid.UUID]:
    """@internal tasks dispatched more than `grace` ago and never started: their broker
    message may be lost. Their `claimed_at` moves to now, so each is re-sent once per
    grace period even when the queue is merely slow (the executor drops duplicates)."""
    threshold = await db_now(session) - grace
    result = await session.execute(
        update(Task)
        .where(
            Task.internal.is_(True),
            Task.status == "claimed",
            Task.worker_id.is_(None),
            Task.started_at.is_(None),
            Task.claimed_at < threshold,
        )
        .values(claimed_at=utcnow())
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def run_pass(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher
) -> None:
    """One sweep: each pass commits on its own, then publishes its events."""
    async with sessionmaker() as session:
        events = await sweep_stale_workers(
            session, timedelta(seconds=settings.worker_timeout_seconds), settings.retry_policy
        )
        await session.commit()
    await publisher.publish(events)
    async with sessionmaker() as session:
        events = await fail_stuck_internal_tasks(
            session, timedelta(seconds=settings.internal_task_timeout_seconds)
        )
        await session.commit()
    await publisher.publish(events)
    async with sessionmaker() as session:
        events = await fail_timed_out_tasks(
            session, timedelta(seconds=settings.task_timeout_grace_seconds), settings.retry_policy
        )
        await session.commit()
    await publisher.publish(events)
    await redispatch_lost(settings, sessionmaker, publisher)


async def redispatch_lost(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher
) -> None:
    if publisher.dispatcher is None:
        return
    async with sessionmaker() as session:
        lost = await take_lost_dispatches(
            session, timedelta(seconds=settings.internal_dispatch_grace_seconds)
        )
        await session.commit()
    if lost:
        log.info("re-sending %d @internal task(s) never picked up", len(lost))
        await publisher.publish(await publisher.dispatcher.dispatch(lost))


async def run_forever(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    leader: Leader,
    stop: asyncio.Event | None = None,
) -> None:
    """Every interval (the first one interval after start): if leader, one pass. A failing
    pass is logged and the loop goes on. Setting `stop` ends it between passes."""
    stop = stop or asyncio.Event()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweeper_interval_seconds)
        if stop.is_set():
            return
        try:
            if await leader.lead():
                await run_pass(settings, sessionmaker, publisher)
        except Exception:
            log.exception("background pass failed; next try in one interval")


async def run_scheduler(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    leader: Leader,
    stop: asyncio.Event,
) -> None:
    """Every scheduler interval, on the leader: wake workers of tasks that became due
    (delayed submits, retries after backoff). The sweeper loop keeps the leadership fresh."""
    since: datetime | None = None
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.scheduler_interval_seconds)
        if stop.is_set():
            return
        if not leader.leading:
            since = None  # a new leader starts by waking everything already due
            continue
        try:
            async with sessionmaker() as session:
                events, since = await scheduler.wake_due_tasks(session, since)
            await publisher.publish(events)
        except Exception:
            log.exception("scheduler pass failed; next try in one interval")
