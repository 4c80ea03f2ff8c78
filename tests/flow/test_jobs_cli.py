"""`jobserver jobs list|pause|resume` against the database (both backends)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import app as cli
from tests.conftest import TEST_SECRET
from tests.contract.conftest import JOBLIB, Headers, registered_worker

JOB = "r1:modifiers:Echo"


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "JOBSERVER_DATABASE_URL": database_url,
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
    assert listed.output.splitlines() == [f"{JOB}\t1 worker(s)\tpaused"]
    assert (await run(cli_env, "jobs", "resume", JOB)).exit_code == 0
    listed = await run(cli_env, "jobs", "list", "--room", "r1")
    assert listed.output.splitlines() == [f"{JOB}\t1 worker(s)\t-"]


async def test_the_cli_refuses_to_pause_an_unknown_job(cli_env: dict[str, str]) -> None:
    result = await run(cli_env, "jobs", "pause", JOB)
    assert result.exit_code == 1
    assert f"Job '{JOB}' not found" in result.output
