"""`jobserver tasks`: list, show, cancel and retry tasks. Cancel and retry run the REST
actions' service calls, so the same rules apply and the same events go out."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli import table
from app.cli.common import CONSOLE, fail, group, run, session, settings, task_service, task_store
from app.services.tasks.states import TaskStatus

if TYPE_CHECKING:
    from app.services.tasks.records import TaskRecord, TaskView

app = group("List, show, cancel and retry tasks.")

HEADERS = ["ID", "JOB", "ROOM", "STATUS", "ATTEMPT", "CREATED", "ERROR"]
ERROR_WIDTH = 40
# Stored JSON text; shown parsed.
_JSON_FIELDS = frozenset({"payload", "result"})
# The row's position in the table: internal, not a property of the task.
_HIDDEN_FIELDS = frozenset({"seq"})


def _task_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"not a task id: {text!r}")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _row(task: TaskRecord) -> list[str]:
    return [
        task.id,
        task.job_name,
        task.room_id,
        task.status,
        f"{task.attempt}/{task.max_attempts}",
        _when(task.created_at),
        table.excerpt(task.error, ERROR_WIDTH),
    ]


@app.command("list")
def list_tasks(
    room: Annotated[str | None, typer.Option(help="Only tasks submitted to this room")] = None,
    job: Annotated[str | None, typer.Option(help="Only this job's tasks (full name)")] = None,
    status: Annotated[TaskStatus | None, typer.Option(help="Only tasks in this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Show at most this many")] = 50,
) -> None:
    """List tasks, newest first, as a table: id, job, room, status, attempt/max, created
    (UTC), the start of the error."""
    from app.services.pages import PageRequest
    from app.services.tasks import reads

    async def go() -> tuple[list[list[str]], int]:
        async with session(settings()) as opened:
            page = await reads.list_matching(opened, room, job, status, PageRequest(limit))
        return [_row(view.task) for view in page.items], page.total

    rows, total = run(go())
    for line in table.render(HEADERS, rows):
        typer.echo(line)
    if not rows:
        typer.echo("(no tasks)")
    elif total > len(rows):
        typer.echo(f"({len(rows)} of {total} tasks: --limit shows more)")


def _fields(view: TaskView) -> dict[str, Any]:
    task = view.task
    shown: dict[str, Any] = {}
    for field in dataclasses.fields(task):
        if field.name in _HIDDEN_FIELDS:
            continue
        value = getattr(task, field.name)
        if field.name in _JSON_FIELDS and value is not None:
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        shown[field.name] = value
    shown["queue_position"] = view.queue_position
    return shown


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value)


@app.command("show")
def show(
    task_id: Annotated[str, typer.Argument(help="The task's id")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
) -> None:
    """Every field of a task, as `name: value` lines (or JSON)."""
    wanted = _task_id(task_id)

    async def go() -> TaskView | None:
        async with task_store(settings()) as store:
            return await store.get(str(wanted))

    view = run(go())
    if view is None:
        fail(f"Task '{wanted}' not found")
    fields = _fields(view)
    if as_json:
        typer.echo(json.dumps(fields, indent=2))
        return
    for name, value in fields.items():
        typer.echo(f"{name}: {_text(value)}")


@app.command("cancel")
def cancel(task_id: Annotated[str, typer.Argument(help="The task's id")]) -> None:
    """Cancel a pending, claimed or running task; its worker's later reports are refused."""
    wanted = _task_id(task_id)

    async def go() -> TaskView:
        async with task_service(settings()) as tasks:
            return await tasks.cancel(CONSOLE, wanted)

    task = run(go()).task
    typer.echo(f"{task.id} is {task.status}")


@app.command("retry")
def retry(task_id: Annotated[str, typer.Argument(help="The task's id")]) -> None:
    """Run a failed or cancelled task again: a new pending attempt, due now; waiting
    workers are woken (through Redis when the server uses it, else at their next poll)."""
    wanted = _task_id(task_id)

    async def go() -> TaskView:
        async with task_service(settings()) as tasks:
            return await tasks.retry(CONSOLE, wanted)

    task = run(go()).task
    typer.echo(f"{task.id} is {task.status} (attempt {task.attempt} of {task.max_attempts})")
