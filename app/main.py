"""create_app(settings) -> FastAPI. The lifespan wires database, Redis, Socket.IO, loops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from app import background, bootstrap
from app.api import auth, health, jobs, problems, stats, task_actions, tasks, workers
from app.api.metrics import router as metrics_router
from app.api.providers import router as providers_router
from app.api.request_log import RequestLogMiddleware
from app.dashboard import routes as dashboard_routes
from app.dashboard.feed import Feed
from app.db.session import make_engine, make_sessionmaker
from app.internal import runtime as internal_runtime
from app.logs import configure as configure_logs
from app.metrics import ScrapeCache
from app.notify import LocalNotifier, RedisNotifier, TaskNotifier
from app.realtime import server as realtime_server
from app.realtime.presence import Presence
from app.realtime.publisher import Publisher
from app.results import MemoryResultBackend, RedisResultBackend, ResultBackend
from app.services.actor_cache import ActorCache
from app.settings import Settings
from app.state import Core

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the server for these settings. Refuses (StartupRefused) a bad configuration."""
    secret = bootstrap.resolve_secret(settings)
    engine = make_engine(settings.effective_database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    results: ResultBackend = (
        RedisResultBackend(redis) if redis is not None else MemoryResultBackend()
    )
    notifier: TaskNotifier = RedisNotifier(redis) if redis is not None else LocalNotifier()
    actor_cache = ActorCache(settings.auth_cache_seconds)
    sio = realtime_server.make_server(settings)
    publisher = Publisher(notifier, sio)
    sessionmaker = make_sessionmaker(engine, info={"actor_cache": actor_cache})
    presence = Presence(sessionmaker, publisher, settings.disconnect_grace_seconds, redis)
    core = Core(
        settings=settings,
        secret=secret,
        results=results,
        engine=engine,
        sessionmaker=sessionmaker,
        notifier=notifier,
        publisher=publisher,
        actor_cache=actor_cache,
        redis=redis,
        presence=presence,
    )
    internal = internal_runtime.build(settings, core.sessionmaker, core.publisher)
    core.internal_jobs = internal.names
    core.scrape_cache = ScrapeCache(core.sessionmaker, settings.worker_timeout_seconds)
    core.dashboard_feed = Feed(core.sessionmaker)
    realtime = realtime_server.Realtime(sio, presence, sessionmaker, secret)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            assert core.dashboard_feed is not None
            stack.push_async_callback(core.dashboard_feed.close)
            if redis is not None:
                stack.push_async_callback(redis.aclose)
            await bootstrap.prepare_schema(engine, settings)
            await bootstrap.ensure_default_admin(core.sessionmaker, settings)
            await results.start()
            stack.push_async_callback(results.close)
            await notifier.start()
            stack.push_async_callback(notifier.stop)
            await realtime.start()
            stack.push_async_callback(realtime.stop)
            await stack.enter_async_context(
                internal_runtime.serving(internal, core.sessionmaker, core.publisher)
            )
            if settings.background_enabled:
                await stack.enter_async_context(
                    background.running(settings, core.sessionmaker, core.publisher)
                )
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
    app.include_router(providers_router)
    app.include_router(workers.router)
    app.include_router(jobs.router)
    app.include_router(task_actions.router)  # before tasks: its /bulk route
    app.include_router(tasks.router)
    app.include_router(stats.router)
    app.include_router(metrics_router)
    dashboard_routes.include(app)
    app.mount("/socket.io", realtime_server.asgi_app(sio))
    app.add_middleware(RequestLogMiddleware)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`--workers`, `--reload`): settings from the environment.
    Logging is set up here, in each server process, and not in create_app (tests)."""
    settings = Settings()
    configure_logs(settings.log_format, settings.log_level)
    return create_app(settings)
