"""Wires @internal jobs into a process: extensions, broker, executor, dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AsyncBroker, InMemoryBroker

from app.internal import broker as brokers
from app.internal import broker_urls
from app.internal import extensions as extension_loader
from app.internal.dispatch import Dispatcher
from app.internal.executor import Executor
from app.internal.registration import sync_jobs
from app.internal.threads import ExtensionThreads
from app.realtime.publisher import Publisher
from app.services.tasks.service import TaskService
from app.settings import Settings

# Within the server's shutdown budget (app/lifecycle.py), leaving time to close the broker.
DRAIN_SECONDS = 1.5


@dataclass
class InternalJobs:
    extensions: list[type[BaseModel]]
    broker: AsyncBroker
    handles: brokers.TaskHandles
    threads: ExtensionThreads

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.handles)


def build(settings: Settings, tasks: TaskService) -> InternalJobs:
    """Load the extensions and register them on a broker. Raises StartupRefused."""
    broker_urls.check_workable(settings.effective_broker_url, settings.redis_url)
    extensions = extension_loader.load(settings)
    broker = brokers.make_broker(settings.effective_broker_url)
    threads = ExtensionThreads(settings.internal_threads)
    handles = brokers.register(broker, extensions, Executor(tasks, threads))
    return InternalJobs(extensions, broker, handles, threads)


@asynccontextmanager
async def serving(
    internal: InternalJobs,
    sessionmaker: async_sessionmaker[AsyncSession],
    publisher: Publisher,
) -> AsyncIterator[Dispatcher]:
    """In the server: the Job rows exist, the broker is up, and committed @internal tasks
    are dispatched by the publisher."""
    async with sessionmaker() as session:
        await sync_jobs(session, internal.extensions)
        await session.commit()
    await internal.broker.startup()
    dispatcher = Dispatcher(sessionmaker, internal.handles)
    publisher.dispatcher = dispatcher
    try:
        yield dispatcher
    finally:
        publisher.dispatcher = None
        # No extension starts from now on; a task still waiting for a thread stays
        # `claimed` for the leader to send again.
        internal.threads.close()
        try:
            if isinstance(internal.broker, InMemoryBroker):
                # In-process tasks get a moment to finish; one still running after that
                # stays `running` until the stuck-task rule fails it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(internal.broker.wait_all(), DRAIN_SECONDS)
            await internal.broker.shutdown()
        finally:
            # Also when this step is cut off by the shutdown budget (app/lifecycle.py).
            internal.threads.shutdown()
