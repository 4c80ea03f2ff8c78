"""`jobserver worker`: taskiq worker processes running @internal tasks from the broker.

Each process builds its own broker from the environment (taskiq calls `broker_from_env`).
"""

from __future__ import annotations

import asyncio

from taskiq import AsyncBroker, TaskiqEvents, TaskiqState
from taskiq.cli.common_args import LogLevel
from taskiq.cli.worker.args import WorkerArgs
from taskiq.cli.worker.run import run_worker

from app import redis_client
from app.db.store import make_store
from app.errors import StartupRefused
from app.internal import broker_urls, runtime
from app.notify import TaskWaiters
from app.realtime.fanout import Fanout
from app.realtime.publisher import Publisher
from app.services.tasks.service import TaskService
from app.settings import Settings

BROKER_FACTORY = "app.internal.worker:broker_from_env"
# A worker process runs one @internal task at a time per taskiq slot; a few connections do.
WORKER_POOL_SIZE = 4


def checked_redis_url(settings: Settings) -> str:
    """The Redis URL of a worker; raises StartupRefused when it cannot run separately."""
    if settings.redis_url is None:
        # The worker's events reach the servers' long-polls and Socket.IO rooms only
        # through Redis, whatever broker carries the tasks.
        raise StartupRefused("`jobserver worker` needs JOBSERVER_REDIS_URL")
    if not broker_urls.is_shared(settings.effective_broker_url):
        raise StartupRefused(
            "`jobserver worker` needs a shared broker, not memory://: set JOBSERVER_BROKER_URL"
        )
    return settings.redis_url


def broker_from_env() -> AsyncBroker:
    """The broker of one worker process, with its own engine and Redis publisher."""
    settings = Settings()
    redis_url = checked_redis_url(settings)
    redis = redis_client.connect(redis_url, settings)
    # No sockets here: events reach the servers' sockets and long-polls through Redis.
    fanout = Fanout(TaskWaiters(), None, redis)
    store = make_store(settings.effective_database_url, WORKER_POOL_SIZE)
    tasks = TaskService(
        store, Publisher(fanout), settings.retry_policy, settings.claim_lease_seconds
    )
    internal = runtime.build(settings, tasks)

    async def start(_: TaskiqState) -> None:
        await store.start()
        await fanout.start(listen=False)

    async def close(_: TaskiqState) -> None:
        internal.threads.shutdown()
        await fanout.stop()
        await store.close()
        await redis.aclose()

    internal.broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, start)
    internal.broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, close)
    return internal.broker


def run(settings: Settings, concurrency: int) -> int | None:
    """Run `concurrency` taskiq worker processes until stopped (taskiq restarts a dead one).
    The broker is tried once first, so a wrong URL stops here with one line."""
    checked_redis_url(settings)
    asyncio.run(broker_urls.probe(settings.effective_broker_url))
    level = LogLevel.__members__.get(settings.log_level.upper(), LogLevel.INFO)
    args = WorkerArgs(
        broker=BROKER_FACTORY, modules=[], workers=concurrency, log_level=level, tasks_pattern=()
    )
    return run_worker(args)
