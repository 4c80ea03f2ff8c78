"""Background loops of the server (sweeper, dispatch repair) and the leader lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background import leader as leaders
from app.background.sweeper import run_forever, run_scheduler
from app.realtime.publisher import Publisher
from app.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def running(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher
) -> AsyncIterator[None]:
    """The loops run (on the leader) while the context is open."""
    leader = leaders.for_database(settings.effective_database_url)
    stop = asyncio.Event()
    await leader.lead()  # so the scheduler need not wait one sweeper interval to start
    loops = [
        asyncio.create_task(
            run_forever(settings, sessionmaker, publisher, leader, stop), name="background"
        ),
        asyncio.create_task(
            run_scheduler(settings, sessionmaker, publisher, leader, stop), name="scheduler"
        ),
    ]
    try:
        yield
    finally:
        # Let a running pass finish its transaction rather than cut it off mid-query.
        stop.set()
        for loop in loops:
            try:
                await asyncio.wait_for(loop, STOP_TIMEOUT)
            except TimeoutError:
                log.warning("%s pass did not finish in %ss", loop.get_name(), STOP_TIMEOUT)
        await leader.release()
