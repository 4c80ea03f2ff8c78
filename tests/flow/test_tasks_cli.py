"""`jobserver tasks list|show|cancel|retry` against the database (both backends), with the
server using Redis: the CLI's events reach it as a replica's would."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import app as cli
from app.state import Core
from tests.conftest import TEST_SECRET
from tests.contract.conftest import (
    Headers,
    claim,
    claimed,
    get_task,
    patch,
    registered_worker,
    submitted,
)

JOB = "r1:modifiers:Echo"
OTHER_JOB = "r2:modifiers:Echo"
DEADLINE_SECONDS = 10


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    return {"redis_url": redis_url}


@pytest.fixture
def cli_env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "JOBSERVER_DATABASE_URL": database_url,
        "JOBSERVER_REDIS_URL": redis_url,
        "JOBSERVER_SECRET_KEY": TEST_SECRET,
        "JOBSERVER_DATA_DIR": str(tmp_path / "cli-data"),
    }


async def run(env: dict[str, str], *args: str) -> Result:
    """In a thread: the commands call asyncio.run, which needs a loop-free thread."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


class Emitted:
    """Stands in for the server's Socket.IO server: what reaches it, from anywhere."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str | None]] = []
        self.arrived = asyncio.Event()

    async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None:
        self.events.append((event, data, room))
        self.arrived.set()

    async def wait_for(self, event: str, task_id: str, status: str | None = None) -> None:
        def seen() -> bool:
            return any(
                name == event
                and data.get("task_id", data.get("id")) == task_id
                and status in (None, data.get("status"))
                for name, data, _ in self.events
            )

        async with asyncio.timeout(DEADLINE_SECONDS):
            while not seen():
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
def emitted(core: Core) -> Emitted:
    recorder = Emitted()
    core.publisher.fanout.emitter = recorder
    return recorder


async def failed_task(client: httpx.AsyncClient, headers: Headers, error: str) -> str:
    task_id, _ = await failed_by_worker(client, headers, error)
    return task_id


async def failed_by_worker(
    client: httpx.AsyncClient, headers: Headers, error: str
) -> tuple[str, str]:
    """A task its worker reported failed: (task id, worker id)."""
    worker_id = await registered_worker(client, headers)
    task_id = await submitted(client, headers)
    assert await claimed(client, headers, worker_id) == task_id
    await patch(client, headers, task_id, "running")
    response = await patch(client, headers, task_id, "failed", error)
    assert response.json()["status"] == "failed", response.text
    return task_id, worker_id


def table_rows(output: str) -> list[list[str]]:
    """The table's rows under its header, split into columns (error excerpts have no
    double blanks)."""
    header, *rows = output.splitlines()
    assert header.split() == ["ID", "JOB", "ROOM", "STATUS", "ATTEMPT", "CREATED", "ERROR"]
    return [[cell.strip() for cell in row.split("  ") if cell.strip()] for row in rows]


async def test_tasks_list_shows_a_table_newest_first_with_attempts_and_errors(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers
) -> None:
    failed = await failed_task(client, user_headers, "ValueError: the input\nwas bad")
    await registered_worker(client, user_headers, room="r2")
    pending = await submitted(client, user_headers, job=OTHER_JOB, room="r2")
    listed = await run(cli_env, "tasks", "list")
    assert listed.exit_code == 0, listed.output
    rows = table_rows(listed.output)
    assert [row[:5] for row in rows] == [
        [pending, OTHER_JOB, "r2", "pending", "1/1"],
        [failed, JOB, "r1", "failed", "1/1"],
    ]
    assert rows[0][-1] == "-"
    assert rows[1][-1] == "ValueError: the input was bad"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--room", "r2"), "pending"),
        (("--job", JOB), "failed"),
        (("--status", "failed"), "failed"),
        (("--room", "r1", "--status", "pending"), None),
    ],
)
async def test_tasks_list_filters_by_room_job_and_status(
    cli_env: dict[str, str],
    client: httpx.AsyncClient,
    user_headers: Headers,
    flags: tuple[str, ...],
    expected: str | None,
) -> None:
    await failed_task(client, user_headers, "boom")
    await registered_worker(client, user_headers, room="r2")
    await submitted(client, user_headers, job=OTHER_JOB, room="r2")
    listed = await run(cli_env, "tasks", "list", *flags)
    assert listed.exit_code == 0, listed.output
    if expected is None:
        assert listed.output.splitlines()[1:] == ["(no tasks)"]
    else:
        assert [row[3] for row in table_rows(listed.output)] == [expected]


async def test_tasks_list_limit_says_how_many_more_there_are(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers)
    newest = [await submitted(client, user_headers) for _ in range(3)][-1]
    listed = await run(cli_env, "tasks", "list", "--limit", "1")
    assert listed.exit_code == 0, listed.output
    *table, note = listed.output.splitlines()
    assert [row[0] for row in table_rows("\n".join(table))] == [newest]
    assert note == "(1 of 3 tasks: --limit shows more)"


async def test_tasks_list_refuses_an_unknown_job_in_one_line(cli_env: dict[str, str]) -> None:
    listed = await run(cli_env, "tasks", "list", "--job", "r1:modifiers:Nope")
    assert listed.exit_code == 1
    assert listed.output.splitlines() == ["error: Job 'r1:modifiers:Nope' not found"]


async def test_tasks_show_prints_every_field(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers, payload={"x": [1, 2]})
    shown = await run(cli_env, "tasks", "show", task_id)
    assert shown.exit_code == 0, shown.output
    fields = dict(line.split(": ", 1) for line in shown.output.splitlines())
    assert fields["id"] == task_id
    assert (fields["job_name"], fields["room_id"], fields["status"]) == (JOB, "r1", "pending")
    assert json.loads(fields["payload"]) == {"x": [1, 2]}
    assert (fields["result"], fields["error"], fields["queue_position"]) == ("-", "-", "1")
    as_json = await run(cli_env, "tasks", "show", task_id, "--json")
    body = json.loads(as_json.output)
    assert set(body) == set(fields)
    assert body["payload"] == {"x": [1, 2]}
    assert body["attempt"] == 1


@pytest.mark.parametrize("command", ["show", "cancel", "retry"])
async def test_an_unknown_task_id_fails_in_one_line(cli_env: dict[str, str], command: str) -> None:
    unknown = str(uuid.uuid4())
    result = await run(cli_env, "tasks", command, unknown)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: Task '{unknown}' not found"]
    malformed = await run(cli_env, "tasks", command, "not-a-uuid")
    assert malformed.exit_code == 1
    assert malformed.output.splitlines() == ["error: not a task id: 'not-a-uuid'"]


async def test_tasks_cancel_cancels_and_tells_the_server(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers, emitted: Emitted
) -> None:
    await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    cancelled = await run(cli_env, "tasks", "cancel", task_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.splitlines() == [f"{task_id} is cancelled"]
    assert (await get_task(client, user_headers, task_id))["status"] == "cancelled"
    await emitted.wait_for("task_status_event", task_id, "cancelled")


async def test_tasks_cancel_follows_the_state_machine(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await failed_task(client, user_headers, "boom")
    refused = await run(cli_env, "tasks", "cancel", task_id)
    assert refused.exit_code == 1
    assert refused.output.splitlines() == ["error: Cannot transition from 'failed' to 'cancelled'"]


async def test_tasks_retry_hands_the_task_to_a_waiting_worker(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers, emitted: Emitted
) -> None:
    task_id, worker_id = await failed_by_worker(client, user_headers, "boom")
    retried = await run(cli_env, "tasks", "retry", task_id)
    assert retried.exit_code == 0, retried.output
    assert retried.output.splitlines() == [f"{task_id} is pending (attempt 2 of 2)"]
    # The wake-up a waiting worker acts on, sent through Redis by the CLI's process.
    await emitted.wait_for("task_available", task_id)
    task = (await claim(client, user_headers, worker_id)).json()["task"]
    assert task["id"] == task_id


async def test_tasks_retry_follows_the_state_machine(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    refused = await run(cli_env, "tasks", "retry", task_id)
    assert refused.exit_code == 1
    assert refused.output.splitlines() == ["error: Cannot transition from 'pending' to 'pending'"]
