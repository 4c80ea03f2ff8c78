"""`jobserver schedules`: tasks fired by cron or at an interval."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer

from app.cli.common import CONSOLE, fail, group, run, session, settings

app = group("Manage schedules (tasks fired by cron).")


@app.command("list")
def list_schedules(
    job: Annotated[str | None, typer.Option(help="Only this job (full name)")] = None,
    room: Annotated[str | None, typer.Option(help="Only this room")] = None,
) -> None:
    """List schedules: id, job, room, rule, state, next fire time."""
    from app.services.schedules import definitions as schedules

    async def go() -> list[str]:
        async with session(settings()) as opened:
            page = await schedules.list_schedules(opened, schedules.ALL, job, room)
            return [schedules.describe(item) for item in page.items]

    for line in run(go()):
        typer.echo(line)


@app.command("add")
def add(
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
    from app.services import users
    from app.services.schedules import definitions as schedules

    config = settings()
    try:
        body = json.loads(payload)
    except ValueError as exc:
        fail(f"--payload is not JSON: {exc}")
    if not isinstance(body, dict):
        fail("--payload must be a JSON object")
    spec = schedules.ScheduleSpec(job, room, body, cron, timezone, every, catch_up=catch_up)

    async def go() -> str:
        async with session(config) as opened:
            user = await users.require_by_email(opened, owner)
            actor = users.actor_of(user)
            created = await schedules.create(opened, actor, spec, config.json_limits)
            return schedules.describe(created)

    typer.echo(run(go()))


def _change(schedule_id: uuid.UUID, enabled: bool) -> None:
    from app.services.schedules import definitions as schedules

    change = schedules.ScheduleChange(given=frozenset({"enabled"}), enabled=enabled)

    async def go() -> str:
        config = settings()
        async with session(config) as opened:
            changed = await schedules.update(
                opened, CONSOLE, schedule_id, change, config.json_limits
            )
            return schedules.describe(changed)

    typer.echo(run(go()))


@app.command("enable")
def enable(schedule_id: uuid.UUID) -> None:
    """Enable a schedule: its next fire time counts from now."""
    _change(schedule_id, True)


@app.command("disable")
def disable(schedule_id: uuid.UUID) -> None:
    """Disable a schedule: it fires no more until enabled."""
    _change(schedule_id, False)


@app.command("delete")
def delete(schedule_id: uuid.UUID) -> None:
    """Delete a schedule (the tasks it submitted stay)."""
    from app.services.schedules import definitions as schedules

    async def go() -> None:
        async with session(settings()) as opened:
            await schedules.delete(opened, CONSOLE, schedule_id)

    run(go())
    typer.echo(f"deleted {schedule_id}")
