"""The `jobserver` command: serve, worker, db, users, jobs, schedules, token, config.
Each command delegates."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, NoReturn, TypeVar

import typer
from alembic.util.exc import CommandError
from sqlalchemy.ext.asyncio import AsyncSession

from app import bootstrap
from app.db import migrate
from app.db.session import make_engine, make_sessionmaker
from app.errors import JobserverError, StartupRefused
from app.services import jobs, pauses, tokens, users
from app.services.actors import Actor
from app.services.schedules import definitions as schedules
from app.services.schedules.definitions import ScheduleChange, ScheduleSpec
from app.settings import Settings, masked_items

T = TypeVar("T")

app = typer.Typer(help="jobserver: a self-hosted job server.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
jobs_app = typer.Typer(help="List, pause and resume jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
schedules_app = typer.Typer(help="Manage schedules (tasks fired by cron).", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")
# Whoever runs the CLI holds the database itself: it acts as an admin.
CONSOLE = Actor(id=uuid.UUID(int=0), role="admin")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _check(rule: Callable[..., object], *args: object) -> None:
    """Apply a validation rule before anything is opened; its error ends the command."""
    try:
        rule(*args)
    except JobserverError as exc:
        _fail(str(exc))


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except (JobserverError, StartupRefused, CommandError) as exc:
        _fail(str(exc))


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = make_engine(settings.effective_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
            await session.commit()
    finally:
        await engine.dispose()


async def _with_engine(settings: Settings, action: Callable[..., Awaitable[T]], *args: object) -> T:
    engine = make_engine(settings.effective_database_url)
    try:
        return await action(engine, *args)
    finally:
        await engine.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (JOBSERVER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (JOBSERVER_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Server processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Run the server (embedded SQLite by default; PostgreSQL/Redis from settings)."""
    import uvicorn

    from app import lifecycle
    from app.internal import broker_urls

    settings = _settings()
    try:
        bootstrap.resolve_secret(settings)
    except StartupRefused as exc:
        _fail(str(exc))
    # Once, before any worker process starts: SQLite upgrades here rather than in N racing
    # workers, and PostgreSQL's refusal reads plainly instead of inside uvicorn's traceback.
    _run(_with_engine(settings, bootstrap.prepare_schema, settings))
    try:
        broker_urls.check_workable(settings.effective_broker_url, settings.redis_url)
    except StartupRefused as exc:
        _fail(str(exc))
    _run(broker_urls.probe(settings.effective_broker_url))
    if workers > 1 and settings.redis_url is None:
        typer.echo(
            "warning: without JOBSERVER_REDIS_URL, wake-ups and events stay inside each "
            "worker process; use --workers 1 or set a Redis URL",
            err=True,
        )
    metrics_dir = _multiprocess_metrics_dir() if workers > 1 else None
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        workers=workers,
        reload=reload,
        log_level=settings.log_level,
        # Our handler formats every line (app_from_env); our middleware logs each request
        # without its query string, where uvicorn's access log would print tokens.
        log_config=None,
        access_log=False,
        proxy_headers=True,
        # Long-polls and streams end as the stop begins (app/lifecycle.py); a request still
        # open after this is cut off, so the process exits within 10 s of SIGTERM.
        timeout_graceful_shutdown=lifecycle.DRAIN_SECONDS,
    )
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess_metrics_dir() -> str | None:
    """Worker processes write Prometheus samples to one directory that /metrics sums up;
    prometheus-client reads the variable at import, so it is set before they start.
    Returns the directory to remove afterwards (None: the operator chose one)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jobserver-metrics-")
    return os.environ["PROMETHEUS_MULTIPROC_DIR"]


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run taskiq worker processes for @internal jobs (needs JOBSERVER_REDIS_URL and a
    shared broker: JOBSERVER_BROKER_URL, or Redis by default)."""
    from app.internal import worker as internal_worker

    try:
        status = internal_worker.run(_settings(), concurrency)
    except StartupRefused as exc:
        _fail(str(exc))
    raise typer.Exit(code=status or 0)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    _run(_with_engine(_settings(), migrate.upgrade_async, revision))
    typer.echo(f"upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    _run(_with_engine(_settings(), migrate.downgrade_async, revision))
    typer.echo(f"downgraded to {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    current, head = _run(_with_engine(_settings(), migrate.revisions_async))
    typer.echo(f"current: {current or '(empty)'}\nhead:    {head}")
    if current != head:
        raise typer.Exit(code=1)


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the database schema differ."""
    settings = _settings()
    current, head = _run(_with_engine(settings, migrate.revisions_async))
    if current != head:
        _fail(f"database is at {current or '(empty)'}, code at {head}: run `jobserver db upgrade`")
    _run(_with_engine(settings, migrate.check_async))
    typer.echo("schema matches the models")


@users_app.command("create")
def users_create(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "operator",
) -> None:
    """Create a user."""

    settings = _settings()
    _check(users.check_email, email)
    _check(users.check_password, password, settings.password_min_length)

    async def go() -> None:
        async with _session(settings) as session:
            await users.create(session, email, password, role=role)

    _run(go())
    typer.echo(f"created {email} ({role})")


@users_app.command("list")
def users_list() -> None:
    """List users with their role and state."""

    async def go() -> list[tuple[str, str, bool]]:
        async with _session(_settings()) as session:
            return [(u.email, u.role, u.is_active) for u in await users.list_all(session)]

    for email, role, active in _run(go()):
        typer.echo(f"{email}\t{role}\t{'active' if active else 'inactive'}")


@users_app.command("set-role")
def users_set_role(email: str, role: str) -> None:
    """Change a user's role (admin, operator, viewer)."""

    async def go() -> None:
        async with _session(_settings()) as session:
            await users.set_role(session, email, role)

    _run(go())
    typer.echo(f"{email} is now {role}")


@users_app.command("set-password")
def users_set_password(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password."""

    settings = _settings()
    _check(users.check_password, password, settings.password_min_length)

    async def go() -> None:
        async with _session(settings) as session:
            await users.set_password(session, email, password)

    _run(go())
    typer.echo(f"password of {email} changed (its existing tokens no longer work)")


@jobs_app.command("list")
def jobs_list(
    room: Annotated[str | None, typer.Option(help="Only this room's jobs")] = None,
) -> None:
    """List active jobs: workers, declared, paused."""

    async def go() -> list[jobs.JobView]:
        async with _session(_settings()) as session:
            return await jobs.list_active(session, room)

    for view in _run(go()):
        job = view.job
        flags = [name for name, on in (("declared", job.declared), ("paused", job.paused)) if on]
        typer.echo(f"{job.full_name}\t{len(view.workers)} worker(s)\t{' '.join(flags) or '-'}")


def _set_paused(job_name: str, paused: bool) -> None:
    async def go() -> None:
        async with _session(_settings()) as session:
            await pauses.set_paused(session, CONSOLE, job_name, paused)

    _run(go())


@jobs_app.command("pause")
def jobs_pause(job_name: str) -> None:
    """Pause a job (its full name): claims skip its tasks; submits are still accepted."""
    _set_paused(job_name, True)
    typer.echo(f"{job_name} is paused")


@jobs_app.command("resume")
def jobs_resume(job_name: str) -> None:
    """Resume a paused job; its workers take its tasks at their next poll."""
    _set_paused(job_name, False)
    typer.echo(f"{job_name} is resumed")


@schedules_app.command("list")
def schedules_list(
    job: Annotated[str | None, typer.Option(help="Only this job (full name)")] = None,
    room: Annotated[str | None, typer.Option(help="Only this room")] = None,
) -> None:
    """List schedules: id, job, room, rule, state, next fire time."""

    async def go() -> list[str]:
        async with _session(_settings()) as session:
            page = await schedules.list_schedules(session, schedules.ALL, job, room)
            return [schedules.describe(item) for item in page.items]

    for line in _run(go()):
        typer.echo(line)


@schedules_app.command("add")
def schedules_add(
    job: Annotated[str, typer.Argument(help="The job's full name, room:category:name")],
    room: Annotated[str, typer.Option(help="The room each task is submitted to")],
    owner: Annotated[str, typer.Option(help="Email of the user the tasks are submitted as")],
    cron: Annotated[str | None, typer.Option(help="Cron expression")] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone of the cron")] = "UTC",
    every: Annotated[float | None, typer.Option(help="Fire every this many seconds")] = None,
    payload: Annotated[str, typer.Option(help="The task payload, a JSON object")] = "{}",
    catch_up: Annotated[
        bool, typer.Option(help="After downtime, fire the latest missed time")
    ] = False,
) -> None:
    """Add a schedule, owned by OWNER."""
    settings = _settings()
    try:
        body = json.loads(payload)
    except ValueError as exc:
        _fail(f"--payload is not JSON: {exc}")
    if not isinstance(body, dict):
        _fail("--payload must be a JSON object")
    spec = ScheduleSpec(job, room, body, cron, timezone, every, catch_up=catch_up)

    async def go() -> str:
        async with _session(settings) as session:
            user = await users.require_by_email(session, owner)
            actor = users.actor_of(user)
            created = await schedules.create(session, actor, spec, settings.json_limits)
            return schedules.describe(created)

    typer.echo(_run(go()))


def _change_schedule(schedule_id: uuid.UUID, enabled: bool) -> None:
    change = ScheduleChange(given=frozenset({"enabled"}), enabled=enabled)

    async def go() -> str:
        settings = _settings()
        async with _session(settings) as session:
            changed = await schedules.update(
                session, CONSOLE, schedule_id, change, settings.json_limits
            )
            return schedules.describe(changed)

    typer.echo(_run(go()))


@schedules_app.command("enable")
def schedules_enable(schedule_id: uuid.UUID) -> None:
    """Enable a schedule: its next fire time counts from now."""
    _change_schedule(schedule_id, True)


@schedules_app.command("disable")
def schedules_disable(schedule_id: uuid.UUID) -> None:
    """Disable a schedule: it fires no more until enabled."""
    _change_schedule(schedule_id, False)


@schedules_app.command("delete")
def schedules_delete(schedule_id: uuid.UUID) -> None:
    """Delete a schedule (the tasks it submitted stay)."""

    async def go() -> None:
        async with _session(_settings()) as session:
            await schedules.delete(session, CONSOLE, schedule_id)

    _run(go())
    typer.echo(f"deleted {schedule_id}")


@app.command()
def token(
    email: str,
    lifetime: Annotated[
        int | None,
        typer.Option(help="Seconds (default: the token lifetime; at most the maximum)"),
    ] = None,
) -> None:
    """Mint a JWT for a user, for scripts and workers."""
    settings = _settings()
    seconds = settings.token_lifetime_seconds if lifetime is None else lifetime
    try:
        tokens.check_lifetime(seconds, settings.max_token_lifetime_seconds)
    except tokens.LifetimeRefused as exc:
        _fail(str(exc))

    async def go() -> str:
        secret = bootstrap.resolve_secret(settings)
        async with _session(settings) as session:
            user = await users.require_by_email(session, email)
            return tokens.mint(user.id, secret, seconds, generation=user.token_generation)

    sys.stdout.write(_run(go()) + "\n")


@app.command()
def config() -> None:
    """Print the effective settings, secrets masked."""
    for name, value in masked_items(_settings()):
        typer.echo(f"{name}={value}")


if __name__ == "__main__":
    app()
