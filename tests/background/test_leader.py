"""One leader across replicas: `jobserver serve` processes on one PostgreSQL database, the
leader's connections optionally through a TCP proxy that fakes network failures."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import make_engine, make_sessionmaker
from tests.background.leadership import (
    add_stale_worker,
    leader_pids,
    through,
    wait_for,
    worker_exists,
)
from tests.live import LiveServer, server_env, start_server
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

INTERVAL = 2.0
# Correctness bound for waits that are not the rule under test.
DEADLINE = 30.0


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite has one process and is always its own leader."""
    return str(request.param)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    target = make_url(database_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as running:
        yield running


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.kill(signal.SIGKILL)


def serve(database_url: str, tmp_path: Path, name: str, servers: list[LiveServer]) -> LiveServer:
    env = server_env(
        database_url,
        tmp_path / name,
        JOBSERVER_SWEEPER_INTERVAL_SECONDS=str(INTERVAL),
        JOBSERVER_WORKER_TIMEOUT_SECONDS="1",
    )
    server = start_server(env, tmp_path / f"{name}.log")
    servers.append(server)
    return server


async def leader_then_standby(
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    servers: list[LiveServer],
    leader_url: str,
) -> tuple[LiveServer, LiveServer]:
    """A leader on `leader_url`, then a standby that has run for one interval (so that it
    sweeps as soon as it takes over)."""
    leader = serve(leader_url, tmp_path, "leader", servers)

    async def leading() -> bool:
        return await leader_pids(db) == [leader.process.pid]

    await wait_for(leading, "the first server to lead", DEADLINE)
    standby = serve(database_url, tmp_path, "standby", servers)
    await asyncio.sleep(INTERVAL)
    assert await leader_pids(db) == [leader.process.pid]
    return leader, standby


async def standby_sweeps(
    db: async_sessionmaker[AsyncSession], standby: LiveServer, within: float
) -> float:
    """Seconds until the standby leads and has swept a stale worker added now."""
    stale = await add_stale_worker(db)

    async def swept() -> bool:
        leads = await leader_pids(db) == [standby.process.pid]
        return leads and not await worker_exists(db, stale)

    return await wait_for(swept, "the standby to lead and sweep", within)


async def test_other_replica_takes_over_when_the_leader_is_killed(
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    servers: list[LiveServer],
) -> None:
    leader, standby = await leader_then_standby(database_url, db, tmp_path, servers, database_url)
    leader.kill(signal.SIGKILL)
    await standby_sweeps(db, standby, 2 * INTERVAL)


async def test_standby_sweeps_within_two_intervals_when_the_leaders_host_vanishes(
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    servers: list[LiveServer],
    proxy: TcpProxy,
) -> None:
    """The leader's connections go through a proxy that stays up but forwards nothing:
    PostgreSQL sees a live TCP connection and must still free the lock."""
    leader_url = through(database_url, proxy.port)
    leader, standby = await leader_then_standby(database_url, db, tmp_path, servers, leader_url)
    proxy.freeze()
    leader.kill(signal.SIGKILL)
    await standby_sweeps(db, standby, 2 * INTERVAL)


async def test_clean_connection_death_hands_over(
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    servers: list[LiveServer],
    proxy: TcpProxy,
) -> None:
    """The leader lives on but its database connections are closed and cannot reconnect."""
    leader_url = through(database_url, proxy.port)
    leader, standby = await leader_then_standby(database_url, db, tmp_path, servers, leader_url)
    proxy.cut()
    await standby_sweeps(db, standby, 2 * INTERVAL)
    assert leader.process.poll() is None
