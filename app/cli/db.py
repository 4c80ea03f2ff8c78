"""`jobserver db`: schema migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar

import typer

from app.cli.common import fail, group, run, settings, with_engine

T = TypeVar("T")

app = group("Database schema migrations (Alembic).")


def _run(coro: Awaitable[T]) -> T:
    """Alembic's own refusals (an unknown revision) end the command with one line too."""
    from alembic.util.exc import CommandError

    return run(coro, CommandError)


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from app.db import migrate

    _run(with_engine(settings(), migrate.upgrade_async, revision))
    typer.echo(f"upgraded to {revision}")


@app.command("downgrade")
def downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from app.db import migrate

    _run(with_engine(settings(), migrate.downgrade_async, revision))
    typer.echo(f"downgraded to {revision}")


@app.command("current")
def current() -> None:
    """Show the database's revision and the code's head."""
    from app.db import migrate

    found, head = _run(with_engine(settings(), migrate.revisions_async))
    typer.echo(f"current: {found or '(empty)'}\nhead:    {head}")
    if found != head:
        raise typer.Exit(code=1)


@app.command("check")
def check() -> None:
    """Fail when the models and the database schema differ."""
    from app.db import migrate

    config = settings()
    found, head = _run(with_engine(config, migrate.revisions_async))
    if found != head:
        fail(f"database is at {found or '(empty)'}, code at {head}: run `jobserver db upgrade`")
    _run(with_engine(config, migrate.check_async))
    typer.echo("schema matches the models")
