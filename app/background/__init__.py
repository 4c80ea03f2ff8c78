"""Background loops of the server (sweeper, dispatch repair) and the leader lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background import leader as leaders
from app.background.sweeper import run_forever
from app.realtime.publisher import Publisher
from app.settings import Settings


@contextlib.asynccontextmanager
async def running(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher
) -> AsyncIterator[None]:
    """The loops run (on the leader) while the context is open."""
    leader = leaders.for_database(settings.effective_database_url)
    loop = asyncio.create_task(
        run_forever(settings, sessionmaker, publisher, leader), name="background"
    )
    try:
        yield
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await leader.release()
