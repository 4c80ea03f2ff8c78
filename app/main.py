"""create_app(settings) -> FastAPI. The lifespan wires database, Redis, Socket.IO, loops."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from app import background, bootstrap, redis_client
from app.api import (
    auth,
    docs,
    health,
    job_definitions,
    jobs,
    openapi_document,
    problem_pages,
    problems,
    stats,
    task_actions,
    task_history,
    tasks,
    workers,
)
from app.api.body_limit import BodyLimitMiddleware
from app.api.metrics import router as metrics_router
from app.api.providers import router as providers_router
from app.api.request_log import RequestLogMiddleware
from app.api.schedules import router as schedules_router
from app.dashboard import routes as dashboard_routes
from app.dashboard.feed import Feed
from app.db.session import make_engine, make_sessionmaker
from app.db.store import make_store
from app.internal import runtime as internal_runtime
from app.lifecycle import Lifecycle
from app.logs import configure as configure_logs
from app.metrics import ScrapeCache
from app.notify import TaskWaiters
from app.realtime import server as realtime_server
from app.realtime.fanout import Fanout
from app.realtime.presence import Presence
from app.realtime.publisher import Publisher
from app.results import MemoryResultBackend, RedisResultBackend, ResultBackend
from app.services import passwords
from app.services.actor_cache import ActorCache
from app.services.tasks.service import TaskService
from app.services.throttle import MemoryCounter, RedisCounter, Throttle
from app.settings import Settings
from app.state import Core

log = logging.getLogger(__name__)

# Caps of the shutdown steps (seconds); together they also share lifecycle.SHUTDOWN_SECONDS.
# The loops and the @internal drain have inner timeouts below these, so they get to release
# the leader lock and close the broker.
LOOPS_STOP_SECONDS = 2.0
INTERNAL_STOP_SECONDS = 2.5
REALTIME_STOP_SECONDS = 1.5
CLOSE_SECONDS = 1.0


def create_app(settings: Settings, *, serving_process: bool = False) -> FastAPI:
    """Build the server for these settings. Refuses (StartupRefused) a bad configuration.
    `serving_process`: this app is the process's one server (not a test's), so it may tune
    process-wide things such as the garbage collector."""
    secret = bootstrap.resolve_secret(settings)
    engine = make_engine(
        settings.effective_database_url,
        pool_size=settings.db_orm_pool_size,
        max_overflow=settings.db_orm_max_overflow,
    )
    redis = redis_client.connect(settings.redis_url, settings) if settings.redis_url else None
    results: ResultBackend = (
        RedisResultBackend(redis) if redis is not None else MemoryResultBackend()
    )
    waiters = TaskWaiters()
    actor_cache = ActorCache(settings.auth_cache_seconds)
    sio = realtime_server.make_server()
    fanout = Fanout(waiters, sio, redis)
    publisher = Publisher(fanout)
    sessionmaker = make_sessionmaker(engine, info={"actor_cache": actor_cache})
    store = make_store(settings.effective_database_url, settings.db_pool_size)
    task_service = TaskService(
        store,
        publisher,
        settings.retry_policy,
        settings.claim_lease_seconds,
        limits=settings.json_limits,
    )
    lifecycle = Lifecycle()
    presence = Presence(task_service, settings.disconnect_grace_seconds, lifecycle, redis)
    feed = Feed(sessionmaker)
    passwords.configure(settings.password_hash_threads)
    # With Redis the failure counters are shared, so replicas throttle as one.
    throttle = Throttle(
        RedisCounter(redis) if redis is not None else MemoryCounter(),
        settings.login_failure_window_seconds,
    )
    core = Core(
        settings=settings,
        secret=secret,
        results=results,
        engine=engine,
        sessionmaker=sessionmaker,
        notifier=waiters,
        publisher=publisher,
        store=store,
        tasks=task_service,
        lifecycle=lifecycle,
        actor_cache=actor_cache,
        redis=redis,
        presence=presence,
        dashboard_feed=feed,
        throttle=throttle,
    )
    internal = internal_runtime.build(settings, task_service)
    task_service.internal_jobs = internal.names
    core.scrape_cache = ScrapeCache(core.sessionmaker, settings.worker_timeout_seconds)
    realtime = realtime_server.Realtime(
        sio, presence, sessionmaker, secret, settings.socket_auth_check_seconds
    )
    # The moment a stop begins (before uvicorn drains connections): the sockets about to
    # close are no sign of gone workers, and open dashboard streams must not hold the drain.
    lifecycle.on_stop("disconnect cleanups", presence.stop)
    lifecycle.on_stop("dashboard streams", feed.close)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Every shutdown step is bounded (app/lifecycle.py): exit within 10 s of SIGTERM.
        step = lifecycle.bounded
        async with AsyncExitStack() as stack:
            stack.push_async_callback(step, "database", CLOSE_SECONDS, engine.dispose)
            stack.push_async_callback(step, "dashboard feed", CLOSE_SECONDS, feed.close)
            if redis is not None:
                stack.push_async_callback(step, "redis", CLOSE_SECONDS, redis.aclose)
            await bootstrap.prepare_schema(engine, settings)
            await store.start()
            stack.push_async_callback(step, "task store", CLOSE_SECONDS, store.close)
            closing = task_service.progress_reports.close
            stack.push_async_callback(step, "deferred progress", CLOSE_SECONDS, closing)
            await bootstrap.ensure_default_admin(core.sessionmaker, settings)
            await results.start()
            stack.push_async_callback(step, "result cache", CLOSE_SECONDS, results.close)
            await fanout.start()
            stack.push_async_callback(step, "fan-out", CLOSE_SECONDS, fanout.stop)
            await realtime.start()
            stack.push_async_callback(step, "socket.io", REALTIME_STOP_SECONDS, realtime.stop)
            serving = internal_runtime.serving(internal, core.sessionmaker, core.publisher)
            await stack.enter_async_context(
                lifecycle.bounded_exit("@internal jobs", INTERNAL_STOP_SECONDS, serving)
            )
            if settings.background_enabled:
                loops = background.running(settings, task_service, publisher, sessions=sessionmaker)
                await stack.enter_async_context(
                    lifecycle.bounded_exit("background loops", LOOPS_STOP_SECONDS, loops)
                )
            await stack.enter_async_context(lifecycle.serving())
            if serving_process:
                settle_garbage_collector()
            yield

    app = FastAPI(
        title="jobserver",
        version="0.1.0",
        description="A self-hosted job server speaking the zndraw-joblib contract.",
        lifespan=lifespan,
        # Served by api/docs.py from our own files instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.core = core
    problems.install(app)
    # Routes are matched in order: the workers' hot calls first.
    app.include_router(task_actions.router)  # before tasks: its /bulk route
    app.include_router(task_history.router)
    app.include_router(tasks.router)
    app.include_router(workers.router)
    app.include_router(health.router)
    auth.include(app, secret, settings.token_lifetime_seconds)
    app.include_router(providers_router)
    app.include_router(jobs.router)
    app.include_router(job_definitions.router)
    app.include_router(schedules_router)
    app.include_router(stats.router)
    app.include_router(metrics_router)
    dashboard_routes.include(app)
    docs.include(app)
    problem_pages.include(app)
    openapi_document.install(app)
    app.mount("/socket.io", realtime_server.asgi_app(sio))
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_provider_result_bytes=settings.max_provider_result_bytes,
    )
    app.add_middleware(RequestLogMiddleware)  # outermost: it logs the limit's 413s too
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn (`--workers`, `--reload`): settings from the environment.
    Logging is set up here, in each server process, and not in create_app (tests)."""
    settings = Settings()
    configure_logs(settings.log_format, settings.log_level)
    return create_app(settings, serving_process=True)


# Requests allocate many short-lived objects; a young collection every 700 allocations
# (the default) is a steady tax on the hot path.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Start-up leaves ~190,000 long-lived objects (modules, models, routes, the app) that
    every full collection would walk again (~100 ms each under load, measured during bulk
    submits): park them outside the collector, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
