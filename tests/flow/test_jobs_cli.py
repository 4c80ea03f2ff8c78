"""`jobserver jobs list|pause|resume` against the database (both backends), with the
server using Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import app as cli
from app.state import Core
from tests.conftest import TEST_SECRET
from tests.contract.conftest import JOBLIB, Headers, claimed, registered_worker, submitted

JOB = "r1:modifiers:Echo"


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    """The server uses Redis: the CLI's events reach it as another replica's would."""
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


async def test_the_cli_pauses_resumes_and_lists_jobs_with_their_flags(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers)
    paused = await run(cli_env, "jobs", "pause", JOB)
    assert paused.exit_code == 0, paused.output
    job = await client.get(f"{JOBLIB}/rooms/r1/jobs/{JOB}", headers=user_headers)
    assert job.json()["paused"] is True
    listed = await run(cli_env, "jobs", "list")
    assert [line.split() for line in listed.output.splitlines()] == [
        ["JOB", "WORKERS", "FLAGS"],
        [JOB, "1", "paused"],
    ]
    assert (await run(cli_env, "jobs", "resume", JOB)).exit_code == 0
    listed = await run(cli_env, "jobs", "list", "--room", "r1")
    assert listed.output.splitlines()[1].split() == [JOB, "1", "-"]
    other_room = await run(cli_env, "jobs", "list", "--room", "r2")
    assert other_room.output.splitlines() == ["JOB  WORKERS  FLAGS"]


async def test_the_cli_resume_wakes_the_jobs_waiting_workers(
    cli_env: dict[str, str], client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    worker_id = await registered_worker(client, user_headers)
    assert (await run(cli_env, "jobs", "pause", JOB)).exit_code == 0
    task_id = await submitted(client, user_headers)
    woke = asyncio.Event()

    class Socket:
        async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None:
            if (event, room) == ("task_available", f"jobs:{JOB}"):
                woke.set()

    core.publisher.fanout.emitter = Socket()
    assert (await run(cli_env, "jobs", "resume", JOB)).exit_code == 0
    async with asyncio.timeout(10):
        await woke.wait()
    assert await claimed(client, user_headers, worker_id) == task_id


async def test_the_cli_refuses_to_pause_an_unknown_job(cli_env: dict[str, str]) -> None:
    result = await run(cli_env, "jobs", "pause", JOB)
    assert result.exit_code == 1
    assert f"Job '{JOB}' not found" in result.output
