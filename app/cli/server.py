"""`jobserver serve`, `worker`, `token` and `config`."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Annotated

import typer

from app.cli.common import fail, run, settings, with_engine
from app.errors import StartupRefused


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (JOBSERVER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (JOBSERVER_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="Server processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Run the server (embedded SQLite by default; PostgreSQL/Redis from settings)."""
    import uvicorn

    from app import bootstrap, lifecycle
    from app.internal import broker_urls

    config = settings()
    try:
        bootstrap.resolve_secret(config)
    except StartupRefused as exc:
        fail(str(exc))
    # Once, before any worker process starts: SQLite upgrades here rather than in N racing
    # workers, and PostgreSQL's refusal reads plainly instead of inside uvicorn's traceback.
    run(with_engine(config, bootstrap.prepare_schema, config))
    try:
        broker_urls.check_workable(config.effective_broker_url, config.redis_url)
    except StartupRefused as exc:
        fail(str(exc))
    run(broker_urls.probe(config.effective_broker_url))
    if workers > 1 and config.redis_url is None:
        typer.echo(
            "warning: without JOBSERVER_REDIS_URL, wake-ups and events stay inside each "
            "worker process; use --workers 1 or set a Redis URL",
            err=True,
        )
    metrics_dir = _multiprocess_metrics_dir() if workers > 1 else None
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=host or config.host,
        port=port if port is not None else config.port,
        workers=workers,
        reload=reload,
        log_level=config.log_level,
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


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run taskiq worker processes for @internal jobs (needs JOBSERVER_REDIS_URL and a
    shared broker: JOBSERVER_BROKER_URL, or Redis by default)."""
    from app.internal import worker as internal_worker

    try:
        status = internal_worker.run(settings(), concurrency)
    except StartupRefused as exc:
        fail(str(exc))
    raise typer.Exit(code=status or 0)


def token(
    email: str,
    lifetime: Annotated[
        int | None,
        typer.Option(help="Seconds (default: the token lifetime; at most the maximum)"),
    ] = None,
) -> None:
    """Mint a JWT for a user, for scripts and workers."""
    from app import bootstrap
    from app.cli.common import session
    from app.services import tokens, users

    config = settings()
    seconds = config.token_lifetime_seconds if lifetime is None else lifetime
    try:
        tokens.check_lifetime(seconds, config.max_token_lifetime_seconds)
    except tokens.LifetimeRefused as exc:
        fail(str(exc))

    async def go() -> str:
        secret = bootstrap.resolve_secret(config)
        async with session(config) as opened:
            user = await users.require_by_email(opened, email)
            return tokens.mint(user.id, secret, seconds, generation=user.token_generation)

    sys.stdout.write(run(go()) + "\n")


def config(
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Print secrets instead of ********")
    ] = False,
) -> None:
    """Print the effective settings as lines of a .env file (unset ones commented out,
    secrets masked)."""
    from app.settings import env_lines

    for line in env_lines(settings(), show_secrets=show_secrets):
        typer.echo(line)
