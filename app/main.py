"""create_app(settings) -> FastAPI. The lifespan wires database, Redis, Socket.IO, loops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from app import bootstrap
from app.api import auth, health, jobs, problems, stats, task_actions, tasks, workers
from app.db.session import make_engine, make_sessionmaker
from app.notify import LocalNotifier, RedisNotifier, TaskNotifier
from app.realtime.publisher import Publisher
from app.settings import Settings
from app.state import Core

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the server for these settings. Refuses (StartupRefused) a bad configuration."""
    secret = bootstrap.resolve_secret(settings)
    engine = make_engine(settings.effective_database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    notifier: TaskNotifier = RedisNotifier(redis) if redis is not None else LocalNotifier()
    core = Core(
        settings=settings,
        secret=secret,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        notifier=notifier,
        publisher=Publisher(notifier),
        redis=redis,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            if redis is not None:
                stack.push_async_callback(redis.aclose)
            await bootstrap.prepare_schema(engine, settings)
            await bootstrap.ensure_default_admin(core.sessionmaker, settings)
            await notifier.start()
            stack.push_async_callback(notifier.stop)
            yield

    app = FastAPI(
        title="jobserver",
        version="0.1.0",
        description="A self-hosted job server speaking the zndraw-joblib contract.",
        lifespan=lifespan,
    )
    app.state.core = core
    problems.install(app)
    app.include_router(health.router)
    auth.include(app, secret, settings.token_lifetime_seconds)
    app.include_router(workers.router)
    app.include_router(jobs.router)
    app.include_router(task_actions.router)  # before tasks: its /bulk route
    app.include_router(tasks.router)
    app.include_router(stats.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`--workers`, `--reload`): settings from the environment."""
    return create_app(Settings())
