"""The `jobserver` command: serve, worker, db, users, jobs, tasks, schedules, token,
config. One module per command group; each command imports the server's modules it needs
when it runs, so `jobserver --help` and `--version` answer without loading them."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import db, jobs, schedules, server, tasks, users
from app.cli.common import group

app = group("jobserver: a self-hosted job server.")
app.command()(server.serve)
app.command()(server.worker)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(jobs.app, name="jobs")
app.add_typer(tasks.app, name="tasks")
app.add_typer(schedules.app, name="schedules")
app.command()(server.token)
app.command()(server.config)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version as installed_version

        typer.echo(f"jobserver {installed_version('jobserver')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """jobserver: a self-hosted job server."""


if __name__ == "__main__":
    app()
