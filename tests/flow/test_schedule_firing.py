"""The leader's schedules pass, called directly: each due fire time is submitted once as
the schedule's creator; missed times are skipped unless catch_up; a bad schedule costs
only itself."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from app.db.models import Job, Schedule, User
from app.services.schedules.firing import fire_due, submit_fires
from app.services.users import actor_of
from app.state import Core
from tests.flow.schedules import JOB, created, fired, load, make_due, register_job

GRACE = 60.0
PERIOD = 3600


async def pass_(core: Core) -> int:
    return await fire_due(core.sessionmaker, core.tasks, GRACE)


@pytest.fixture
async def schedule(client: httpx.AsyncClient, user_headers: dict[str, str]) -> str:
    """An hourly schedule of the user's job, with a payload and submit options."""
    await register_job(client, user_headers)
    return await created(
        client,
        user_headers,
        every_seconds=PERIOD,
        payload={"n": 7},
        priority=5,
        max_attempts=3,
    )


async def test_a_due_schedule_submits_a_task_as_its_creator(core: Core, schedule: str) -> None:
    await make_due(core.sessionmaker, schedule, 1)
    due_at = (await load(core.sessionmaker, schedule)).next_fire_at
    assert await pass_(core) == 1
    [task] = await fired(core.sessionmaker, schedule)
    row = await load(core.sessionmaker, schedule)
    async with core.sessionmaker() as session:
        creator = await session.get(User, row.created_by)
    assert creator is not None
    assert task.created_by == creator.id
    assert (task.job_name, task.room_id, task.status) == (JOB, "r1", "pending")
    assert (task.payload, task.priority, task.max_attempts) == ({"n": 7}, 5, 3)
    assert row.last_fired_at == due_at
    assert due_at is not None
    assert row.next_fire_at == due_at + timedelta(seconds=PERIOD)


async def test_a_schedule_not_yet_due_does_not_fire(core: Core, schedule: str) -> None:
    assert await pass_(core) == 0
    assert await fired(core.sessionmaker, schedule) == []


async def test_a_fire_time_is_submitted_once_however_often_the_pass_runs(
    core: Core, schedule: str
) -> None:
    await make_due(core.sessionmaker, schedule, 1)
    await pass_(core)
    await pass_(core)
    assert len(await fired(core.sessionmaker, schedule)) == 1


async def test_a_crash_between_the_submit_and_the_update_does_not_duplicate(
    core: Core, schedule: str
) -> None:
    await make_due(core.sessionmaker, schedule, 1)
    row = await load(core.sessionmaker, schedule)
    assert row.next_fire_at is not None
    assert row.created_by is not None
    async with core.sessionmaker() as session:
        creator = await session.get(User, row.created_by)
        assert creator is not None
    # The submit of a pass that died before it moved the schedule on:
    await submit_fires(core.tasks, actor_of(creator), row, [row.next_fire_at])
    assert await pass_(core) == 1  # the pass submits again and finds the stored task
    assert len(await fired(core.sessionmaker, schedule)) == 1
    assert (await load(core.sessionmaker, schedule)).next_fire_at > row.next_fire_at


async def test_missed_fire_times_are_not_caught_up_by_default(core: Core, schedule: str) -> None:
    await make_due(core.sessionmaker, schedule, 5 * PERIOD + 90)
    assert await pass_(core) == 0
    assert await fired(core.sessionmaker, schedule) == []
    row = await load(core.sessionmaker, schedule)
    now = await core.store.now()
    assert row.next_fire_at is not None
    assert now < row.next_fire_at <= now + timedelta(hours=1)
    assert row.last_fired_at is None


async def test_with_catch_up_exactly_the_latest_missed_time_fires(
    core: Core, client: httpx.AsyncClient, user_headers: dict[str, str], schedule: str
) -> None:
    await client.patch(
        f"/v1/joblib/schedules/{schedule}", json={"catch_up": True}, headers=user_headers
    )
    await make_due(core.sessionmaker, schedule, 5 * PERIOD + 90)
    missed_since = (await load(core.sessionmaker, schedule)).next_fire_at
    assert missed_since is not None
    assert await pass_(core) == 1
    [task] = await fired(core.sessionmaker, schedule)
    latest = missed_since + timedelta(seconds=5 * PERIOD)
    assert task.idempotency_key == f"schedule:{schedule}:{latest.isoformat()}"
    assert (await load(core.sessionmaker, schedule)).last_fired_at == latest
    assert await pass_(core) == 0


async def test_a_disabled_schedule_does_not_fire(
    core: Core, client: httpx.AsyncClient, user_headers: dict[str, str], schedule: str
) -> None:
    await make_due(core.sessionmaker, schedule, 1)
    await client.patch(
        f"/v1/joblib/schedules/{schedule}", json={"enabled": False}, headers=user_headers
    )
    async with core.sessionmaker() as session:  # even with a fire time left in the past
        await session.execute(
            update(Schedule)
            .where(Schedule.id == uuid.UUID(schedule))
            .values(next_fire_at=await core.store.now() - timedelta(seconds=1))
        )
        await session.commit()
    assert await pass_(core) == 0
    assert await fired(core.sessionmaker, schedule) == []


async def test_a_fire_of_a_gone_job_is_skipped_and_the_schedule_kept(
    core: Core, schedule: str
) -> None:
    async with core.sessionmaker() as session:
        await session.execute(update(Job).where(Job.full_name == JOB).values(deleted=True))
        await session.commit()
    await make_due(core.sessionmaker, schedule, 1)
    assert await pass_(core) == 0
    row = await load(core.sessionmaker, schedule)
    assert row.enabled
    assert row.last_fired_at is None
    assert row.next_fire_at is not None
    assert row.next_fire_at > await core.store.now()


async def test_a_fire_of_an_inactive_creator_is_skipped(core: Core, schedule: str) -> None:
    async with core.sessionmaker() as session:
        await session.execute(
            update(User).where(User.email == "user@example.com").values(is_active=False)
        )
        await session.commit()
    await make_due(core.sessionmaker, schedule, 1)
    assert await pass_(core) == 0
    assert await fired(core.sessionmaker, schedule) == []
    assert (await load(core.sessionmaker, schedule)).next_fire_at > await core.store.now()


async def test_a_broken_schedule_does_not_stop_the_pass(
    core: Core, client: httpx.AsyncClient, user_headers: dict[str, str], schedule: str
) -> None:
    broken = await created(client, user_headers)
    async with core.sessionmaker() as session:  # a row no rule can read (e.g. a tz removed)
        await session.execute(
            update(Schedule)
            .where(Schedule.id == uuid.UUID(broken))
            .values(timezone="Gone/Zone", next_fire_at=await core.store.now())
        )
        await session.commit()
    await make_due(core.sessionmaker, schedule, 1)
    assert await pass_(core) == 1
    assert len(await fired(core.sessionmaker, schedule)) == 1
    assert await fired(core.sessionmaker, broken) == []
