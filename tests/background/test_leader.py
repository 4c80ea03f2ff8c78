"""One leader across replicas: two `jobserver serve` processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background.leader import APPLICATION_NAME, LOCK_KEY
from app.db.models import Worker
from app.db.session import make_engine, make_sessionmaker
from tests.factories import make_user
from tests.live import LiveServer, server_env, start_server

pytestmark = pytest.mark.slow

INTERVAL = 0.3
# Correctness bound, not a timing claim: take-over is due within one interval.
DEADLINE = 15.0

LEADERS = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :key "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite has one process and is always its own leader."""
    return str(request.param)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def leader_pids(db: async_sessionmaker[AsyncSession]) -> list[int]:
    async with db() as session:
        names = (await session.execute(LEADERS, {"key": LOCK_KEY})).scalars().all()
    return [int(name.rpartition(":")[2]) for name in names if name.startswith(APPLICATION_NAME)]


async def wait_for(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_other_replica_takes_over_when_the_leader_is_killed(
    database_url: str, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    env = server_env(
        database_url,
        tmp_path,
        JOBSERVER_SWEEPER_INTERVAL_SECONDS=str(INTERVAL),
        JOBSERVER_WORKER_TIMEOUT_SECONDS="1",
    )
    servers: list[LiveServer] = [start_server(env, tmp_path / f"server-{i}.log") for i in range(2)]
    try:
        by_pid = {server.process.pid: server for server in servers}

        async def one_leader() -> bool:
            return len(await leader_pids(db)) == 1

        await wait_for(one_leader, "a leader")
        await asyncio.sleep(3 * INTERVAL)
        (leader,) = await leader_pids(db)
        assert leader in by_pid, "only one of the two servers leads"
        by_pid[leader].kill(signal.SIGKILL)
        (survivor,) = set(by_pid) - {leader}

        async with db() as session:
            user = await make_user(session)
            stale = Worker(
                id=uuid.uuid4(),
                user_id=user.id,
                last_heartbeat=datetime.now(UTC) - timedelta(minutes=5),
            )
            session.add(stale)
            await session.commit()

        async def survivor_swept() -> bool:
            async with db() as session:
                gone = await session.get(Worker, stale.id) is None
            return gone and await leader_pids(db) == [survivor]

        await wait_for(survivor_swept, "the surviving replica to lead and sweep")
    finally:
        for server in servers:
            server.kill()
