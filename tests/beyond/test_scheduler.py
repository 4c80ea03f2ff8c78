"""The scheduler pass: due delayed/retried tasks wake workers, one query per pass."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.db.types import utcnow, utcnow_plus
from app.services.tasks.events import DUE_ON_SUBMIT_SECONDS
from app.services.tasks.service import DUE_OVERLAP_SECONDS
from app.services.tasks.store import DueHead
from app.state import Core
from tests.factories import make_job, make_task, make_user

OVERLAP = timedelta(seconds=DUE_OVERLAP_SECONDS)


async def wake_due_tasks(core: Core, since: datetime | None) -> tuple[list[DueHead], datetime]:
    return await core.store.due_heads(since, DUE_OVERLAP_SECONDS, DUE_ON_SUBMIT_SECONDS)


async def test_wake_due_tasks_reports_each_job_and_room_whose_task_became_due(
    core: Core,
) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session)
        user = await make_user(session)
        start = (await session.execute(select(utcnow()))).scalar_one()
        delayed = {"created_at": utcnow_plus(-30), "run_at": utcnow_plus(-1)}
        due = await make_task(session, job, created_by=user.id, **delayed)
        await make_task(session, job, **delayed)
        other_room = await make_task(session, job, room_id="r9", **delayed)
        await make_task(session, job, run_at=utcnow_plus(3600))
        await session.commit()
        events, since = await wake_due_tasks(core, start - timedelta(seconds=2))
    assert {(e.room_id, e.task_id) for e in events} == {
        ("room1", str(due.id)),
        ("r9", str(other_room.id)),
    }
    assert all(e.job_name == job.full_name for e in events)
    assert since >= start


async def test_wake_due_tasks_skips_tasks_due_before_the_window_and_not_yet_due(
    core: Core,
) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session)
        await make_task(session, job, run_at=utcnow_plus(-3600))
        await make_task(session, job, run_at=utcnow_plus(3600))
        await make_task(session, job, status="claimed", run_at=utcnow_plus(-1))
        await session.commit()
        now = (await session.execute(select(utcnow()))).scalar_one()
        events, _ = await wake_due_tasks(core, now - OVERLAP)
    assert events == []


async def test_a_new_leader_wakes_every_due_pending_task(core: Core) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session)
        old = await make_task(session, job, run_at=utcnow_plus(-3600))
        await session.commit()
        events, _ = await wake_due_tasks(core, None)
    assert [e.task_id for e in events] == [str(old.id)]


async def test_a_task_due_on_submit_is_not_announced_again(core: Core) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session)
        start = (await session.execute(select(utcnow()))).scalar_one()
        await make_task(session, job)
        await session.commit()
        events, _ = await wake_due_tasks(core, start)
    assert events == []
