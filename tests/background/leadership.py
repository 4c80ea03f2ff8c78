"""Helpers of the leader tests: who holds the lock, stale workers to sweep, waiting."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background.leader import APPLICATION_NAME, LOCK_KEY
from app.db.models import Worker
from tests.factories import make_user

LEADERS = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :key "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
# Backends of this database waiting for a table lock: a background pass blocked in flight.
BLOCKED = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "WHERE NOT l.granted AND c.relname IN ('tasks', 'workers') "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def leader_pids(db: async_sessionmaker[AsyncSession]) -> list[int]:
    """Process ids of the replicas holding the leader lock (by their application_name)."""
    async with db() as session:
        names = (await session.execute(LEADERS, {"key": LOCK_KEY})).scalars().all()
    return [int(name.rpartition(":")[2]) for name in names if name.startswith(APPLICATION_NAME)]


async def blocked_passes(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(BLOCKED) or 0)


async def add_stale_worker(db: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A worker whose last heartbeat is long past: the next sweep deletes it."""
    async with db() as session:
        user = await make_user(session)
        stale = Worker(
            id=uuid.uuid4(), user_id=user.id, last_heartbeat=datetime.now(UTC) - timedelta(hours=1)
        )
        session.add(stale)
        await session.commit()
    return stale.id


async def worker_exists(db: async_sessionmaker[AsyncSession], worker_id: uuid.UUID) -> bool:
    async with db() as session:
        return await session.get(Worker, worker_id) is not None


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str, within: float) -> float:
    """Poll until `condition` holds; returns the seconds it took, fails after `within`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < within:
        if await condition():
            return loop.time() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def through(database_url: str, port: int) -> str:
    """The same database reached on another local port (a proxy's)."""
    return (
        make_url(database_url)
        .set(host="127.0.0.1", port=port)
        .render_as_string(hide_password=False)
    )
