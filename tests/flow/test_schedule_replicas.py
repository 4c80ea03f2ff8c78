"""Live servers: a schedule fires each fire time exactly once with two server processes
(one leads) and across a restart of the leader, with no fire time skipped."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Job
from app.db.session import make_engine, make_sessionmaker
from tests.background.leadership import leader_pids, wait_for
from tests.flow.schedules import JOB, ROOM, SCHEDULES, fired
from tests.live import LiveServer, server_env, start_server

pytestmark = pytest.mark.slow

DEADLINE = 60.0
PERIOD = 1.0
FAST = {
    "JOBSERVER_SCHEDULE_TICK_SECONDS": "0.2",
    "JOBSERVER_SWEEPER_INTERVAL_SECONDS": "2",
}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.kill(signal.SIGKILL)


def serve(database_url: str, tmp_path: Path, name: str, servers: list[LiveServer]) -> LiveServer:
    env = server_env(database_url, tmp_path / name, **FAST)
    server = start_server(env, tmp_path / f"{name}.log")
    servers.append(server)
    return server


async def schedule_every_second(server: LiveServer, db: async_sessionmaker[AsyncSession]) -> str:
    headers = {"Authorization": f"Bearer {server.token()}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        registered = await client.put(
            f"/v1/joblib/rooms/{ROOM}/jobs", json={"category": "modifiers", "name": "Echo"}
        )
        assert registered.status_code == 201, registered.text
        async with db() as session:  # no worker will run: keep the job from the orphan rule
            await session.execute(update(Job).where(Job.full_name == JOB).values(declared=True))
            await session.commit()
        body = {"job_name": JOB, "room_id": ROOM, "every_seconds": PERIOD}
        created = await client.post(SCHEDULES, json=body)
        assert created.status_code == 201, created.text
        schedule_id: str = created.json()["id"]
        return schedule_id


async def fire_times(db: async_sessionmaker[AsyncSession], schedule_id: str) -> list[datetime]:
    keys = [task.idempotency_key or "" for task in await fired(db, schedule_id)]
    return sorted(datetime.fromisoformat(key.split(":", 2)[2]) for key in keys)


async def wait_for_fires(
    db: async_sessionmaker[AsyncSession], schedule_id: str, count: int
) -> list[datetime]:
    async def enough() -> bool:
        return len(await fire_times(db, schedule_id)) >= count

    await wait_for(enough, f"{count} fires", DEADLINE)
    return await fire_times(db, schedule_id)


def assert_each_fire_time_once(times: list[datetime]) -> None:
    """One task per fire time, and no fire time between the first and the last missing."""
    assert len(set(times)) == len(times)
    steps = {later - earlier for earlier, later in itertools.pairwise(times)}
    assert steps == {timedelta(seconds=PERIOD)}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_server_processes_fire_each_time_once(
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    servers: list[LiveServer],
) -> None:
    first = serve(database_url, tmp_path, "first", servers)
    second = serve(database_url, tmp_path, "second", servers)
    schedule_id = await schedule_every_second(first, db)
    times = await wait_for_fires(db, schedule_id, 5)
    assert_each_fire_time_once(times)

    [leader_pid] = await leader_pids(db)
    leader = first if first.process.pid == leader_pid else second
    leader.kill(signal.SIGTERM)
    seen = len(times)
    times = await wait_for_fires(db, schedule_id, seen + 5)
    assert_each_fire_time_once(times)

    serve(database_url, tmp_path, "restarted", servers)
    await asyncio.sleep(3 * PERIOD)
    assert_each_fire_time_once(await fire_times(db, schedule_id))


async def test_a_restarted_server_neither_repeats_nor_skips_a_fire_time(
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    servers: list[LiveServer],
) -> None:
    server = serve(database_url, tmp_path, "before", servers)
    schedule_id = await schedule_every_second(server, db)
    times = await wait_for_fires(db, schedule_id, 3)
    server.kill(signal.SIGTERM)
    serve(database_url, tmp_path, "after", servers)
    times = await wait_for_fires(db, schedule_id, len(times) + 3)
    assert_each_fire_time_once(times)
