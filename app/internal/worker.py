"""`jobserver worker`: taskiq worker processes running @internal tasks from the broker.

Each process builds its own broker from the environment (taskiq calls `broker_from_env`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from redis.asyncio import Redis
from taskiq import AsyncBroker, TaskiqEvents, TaskiqState
from taskiq.cli.common_args import LogLevel
from taskiq.cli.worker.args import WorkerArgs
from taskiq.cli.worker.run import run_worker

from app.db.session import make_engine, make_sessionmaker
from app.errors import StartupRefused
from app.internal import broker_urls, runtime
from app.notify import RedisNotifier
from app.realtime.publisher import Publisher
from app.realtime.server import REDIS_CHANNEL as SOCKETIO_CHANNEL
from app.settings import Settings

BROKER_FACTORY = "app.internal.worker:broker_from_env"


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
    engine = make_engine(settings.effective_database_url)
    redis = Redis.from_url(redis_url)
    # Events go through Redis: long-polls and Socket.IO rooms on every replica wake.
    emitter: Any = socketio.AsyncRedisManager(redis_url, channel=SOCKETIO_CHANNEL, write_only=True)
    publisher = Publisher(RedisNotifier(redis), emitter)
    internal = runtime.build(settings, make_sessionmaker(engine), publisher)

    async def close(_: TaskiqState) -> None:
        await engine.dispose()
        await redis.aclose()

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
