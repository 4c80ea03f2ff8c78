"""`jobserver jobs`: list, pause and resume jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import table
from app.cli.common import CONSOLE, group, publisher, run, session, settings

app = group("List, pause and resume jobs.")


@app.command("list")
def list_jobs(
    room: Annotated[str | None, typer.Option(help="Only this room's jobs")] = None,
) -> None:
    """List active jobs as a table: name, workers, flags (declared, paused)."""
    from app.services import jobs

    async def go() -> list[list[str]]:
        async with session(settings()) as opened:
            views = await jobs.list_active(opened, room)
        rows = []
        for view in views:
            job = view.job
            flags = [n for n, on in (("declared", job.declared), ("paused", job.paused)) if on]
            rows.append([job.full_name, str(len(view.workers)), " ".join(flags) or "-"])
        return rows

    for line in table.render(["JOB", "WORKERS", "FLAGS"], run(go())):
        typer.echo(line)


def _set_paused(job_name: str, paused: bool) -> None:
    from app.services import pauses

    async def go() -> None:
        config = settings()
        async with publisher(config) as events:
            async with session(config) as opened:
                _, changed = await pauses.set_paused(opened, CONSOLE, job_name, paused)
            # After the commit, as the REST action does: a resume wakes waiting workers.
            await events.publish(changed)

    run(go())


@app.command("pause")
def pause(job_name: str) -> None:
    """Pause a job (its full name): claims skip its tasks; submits are still accepted."""
    _set_paused(job_name, True)
    typer.echo(f"{job_name} is paused")


@app.command("resume")
def resume(job_name: str) -> None:
    """Resume a paused job; its workers take its tasks at their next poll."""
    _set_paused(job_name, False)
    typer.echo(f"{job_name} is resumed")
