"""A leader that loses its lock stops its loops at once: the pass in flight is cancelled,
before the server can hand the lock to another replica when the lock's network goes silent.

The loop runner runs in the test process with its lock connection through a TCP proxy;
the passes use the app's own (direct) connections and are held in flight by table locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import background
from app.background.leader import (
    LOCK_KEY,
    AdvisoryLockLeader,
    LeaderTiming,
)
from app.db.asyncpg_args import asyncpg_connect_args
from app.db.session import make_engine, make_sessionmaker
from app.state import Core
from tests.background.leadership import (
    add_stale_worker,
    blocked_passes,
    through,
    wait_for,
    worker_exists,
)
from tests.tcp_proxy import TcpProxy

INTERVAL = 3.0
TIMING = LeaderTiming.for_sweeper_interval(INTERVAL)
DEADLINE = 30.0


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite has no lock to lose."""
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "sweeper_interval_seconds": INTERVAL,
        "scheduler_interval_seconds": 0.2,
        "worker_timeout_seconds": 1,
    }


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


async def take_lock(database_url: str) -> Any:
    """A connection of the test's that holds the leader lock, or None while it is held."""
    connection = await asyncpg.connect(**asyncpg_connect_args(database_url))
    if await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return connection
    await connection.close()
    return None


@pytest.mark.parametrize("failure", ["freeze", "cut"])
async def test_leader_that_loses_its_lock_cancels_the_pass_in_flight(
    core: Core,
    database_url: str,
    db: async_sessionmaker[AsyncSession],
    proxy: TcpProxy,
    failure: str,
) -> None:
    stale = await add_stale_worker(db)
    lock = AdvisoryLockLeader(through(database_url, proxy.port), TIMING)
    async with db() as blocker:
        await blocker.execute(text("LOCK TABLE tasks, workers IN ACCESS EXCLUSIVE MODE"))
        async with background.running(core.settings, core.tasks, core.publisher, lock):

            async def in_flight() -> bool:
                return lock.leading and await blocked_passes(db) > 0

            await wait_for(in_flight, "a background pass blocked in flight", DEADLINE)
            getattr(proxy, failure)()
            loop = asyncio.get_running_loop()
            lost_at = loop.time()
            cancelled_at: float | None = None
            taken = None
            while taken is None:
                if cancelled_at is None and await blocked_passes(db) == 0:
                    cancelled_at = loop.time()
                taken = await take_lock(database_url)
                assert loop.time() - lost_at < DEADLINE, "the server never freed the lock"
                await asyncio.sleep(0.05)
            try:
                if failure == "freeze":
                    # The rule: the old leader has stopped before the lock can move.
                    assert cancelled_at is not None, "a pass still ran when the lock moved"
                else:  # a closed connection frees the lock at once, and is noticed at once
                    await wait_for(_none_blocked(db), "the pass to be cancelled", INTERVAL)
                assert not lock.leading
                await blocker.rollback()  # the cancelled pass would sweep now
                await asyncio.sleep(2 * INTERVAL)
                assert await worker_exists(db, stale), "the old leader swept after losing the lock"
            finally:
                await taken.close()


def _none_blocked(db: async_sessionmaker[AsyncSession]) -> Any:
    async def none_blocked() -> bool:
        return await blocked_passes(db) == 0

    return none_blocked


@pytest.mark.parametrize("interval", [0.5, 2.0, 30.0, 600.0])
def test_lock_timing_keeps_one_leader_and_hands_over_within_two_intervals(
    interval: float,
) -> None:
    timing = LeaderTiming.for_sweeper_interval(interval)
    # The old leader stops before the server can free its lock.
    assert timing.lease < timing.idle_timeout
    # A live leader's session never sits idle long enough to be ended, with room to spare.
    assert timing.check_every <= timing.idle_timeout / 3
    # Freed after a silent death, taken by a standby, swept: even if the sweep waited a
    # whole interval, it comes within two.
    assert timing.idle_timeout + timing.try_every + interval <= 2 * interval
