"""What every command shares: settings, one-line errors, a database session, the task
service. The server's modules (SQLAlchemy, the stores, Redis) are imported inside the
functions, when a command runs: `jobserver --help` must not pay for them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer

from app.errors import JobserverError, StartupRefused
from app.services.actors import Actor

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.realtime.publisher import Publisher
    from app.services.tasks.service import TaskService
    from app.services.tasks.store import TaskStore
    from app.settings import Settings

T = TypeVar("T")

# Whoever runs the CLI holds the database itself: it acts as an admin.
CONSOLE = Actor(id=uuid.UUID(int=0), role="admin")


def group(help_text: str) -> typer.Typer:
    """A command group. Plain help (click's), not Rich's: Rich's help formatting alone
    costs about half a second of imports on every `--help`."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


def settings() -> Settings:
    from app.settings import Settings

    try:
        return Settings()
    except ValueError as exc:
        fail(str(exc))


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def check(rule: Callable[..., object], *args: object) -> None:
    """Apply a validation rule before anything is opened; its error ends the command."""
    try:
        rule(*args)
    except JobserverError as exc:
        fail(str(exc))


def run(coro: Awaitable[T], *also: type[Exception]) -> T:
    """Run the command's coroutine; our errors (and `also`) end it with one line."""
    import asyncio

    refusals: tuple[type[Exception], ...] = (JobserverError, StartupRefused, *also)
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except refusals as exc:
        fail(str(exc))


@asynccontextmanager
async def session(config: Settings) -> AsyncIterator[AsyncSession]:
    """A session committed when the block ends without an error."""
    from app.db.session import make_engine, make_sessionmaker

    engine = make_engine(config.effective_database_url)
    try:
        async with make_sessionmaker(engine)() as opened:
            yield opened
            await opened.commit()
    finally:
        await engine.dispose()


async def with_engine(config: Settings, action: Callable[..., Awaitable[T]], *args: object) -> T:
    from app.db.session import make_engine

    engine = make_engine(config.effective_database_url)
    try:
        return await action(engine, *args)
    finally:
        await engine.dispose()


@asynccontextmanager
async def publisher(config: Settings) -> AsyncIterator[Publisher]:
    """Publishes the command's events as the server's own writes do: through Redis to every
    server process (their sockets and long-polls), sent before the command exits. Without
    Redis nothing reaches a running server; its workers find the change at their next poll
    (and the leader's scheduler pass announces tasks that became due)."""
    from app import redis_client
    from app.notify import TaskWaiters
    from app.realtime.fanout import Fanout
    from app.realtime.publisher import Publisher

    redis = None if config.redis_url is None else redis_client.connect(config.redis_url, config)
    # Not started: a command's few events queue up and `stop` sends them in one message.
    # (A started flusher cancelled in the middle of a send can swallow its cancellation
    # on Python 3.11, whose wait_for races, and `stop` would then wait for it forever.)
    fanout = Fanout(TaskWaiters(), None, redis)
    try:
        yield Publisher(fanout)
    finally:
        await fanout.stop()
        if redis is not None:
            await redis.aclose()


@asynccontextmanager
async def task_store(config: Settings) -> AsyncIterator[TaskStore]:
    """The server's task store (the statements the REST actions run), started."""
    from app.db.store import make_store

    # A command makes a call or two: a small pool does.
    store = make_store(config.effective_database_url, 2)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def task_service(config: Settings) -> AsyncIterator[TaskService]:
    """The server's task service: the REST actions' rules, commits and events."""
    from app.services.tasks.service import TaskService

    async with task_store(config) as store, publisher(config) as events:
        yield TaskService(
            store,
            events,
            config.retry_policy,
            config.claim_lease_seconds,
            limits=config.json_limits,
        )
