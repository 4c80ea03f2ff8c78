"""`jobserver schedules list|add|enable|disable|delete` against the test database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import app as cli
from app.state import Core
from tests.conftest import TEST_SECRET
from tests.flow.schedules import JOB, ROOM, load, register_job


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


@pytest.fixture
async def job(client: httpx.AsyncClient, user_headers: dict[str, str]) -> str:
    await register_job(client, user_headers)
    return JOB


async def add(env: dict[str, str], *extra: str) -> str:
    """`schedules add` as user@example.com; returns the new schedule's id."""
    result = await run(
        env, "schedules", "add", JOB, "--room", ROOM, "--owner", "user@example.com", *extra
    )
    assert result.exit_code == 0, result.output
    return result.output.split("\t")[0]


async def test_schedules_add_creates_a_schedule_owned_by_the_user(
    cli_env: dict[str, str], job: str, core: Core
) -> None:
    payload = json.dumps({"k": "v"})
    schedule_id = await add(
        cli_env, "--cron", "0 6 * * 1", "--timezone", "America/New_York", "--payload", payload
    )
    row = await load(core.sessionmaker, schedule_id)
    assert (row.job_name, row.cron, row.timezone, row.payload) == (
        job,
        "0 6 * * 1",
        "America/New_York",
        {"k": "v"},
    )
    assert row.next_fire_at is not None


async def test_schedules_list_shows_each_schedule_on_a_line(
    cli_env: dict[str, str], job: str
) -> None:
    first = await add(cli_env, "--every", "30")
    second = await add(cli_env, "--cron", "*/5 * * * *")
    listed = await run(cli_env, "schedules", "list", "--job", job)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert [line.split("\t")[0] for line in lines] == [second, first]
    assert "every 30s" in lines[1]
    assert "cron */5 * * * * (UTC)" in lines[0]


async def test_schedules_disable_and_enable(cli_env: dict[str, str], job: str, core: Core) -> None:
    schedule_id = await add(cli_env, "--every", "30")
    disabled = await run(cli_env, "schedules", "disable", schedule_id)
    assert disabled.exit_code == 0, disabled.output
    row = await load(core.sessionmaker, schedule_id)
    assert (row.enabled, row.next_fire_at) == (False, None)
    enabled = await run(cli_env, "schedules", "enable", schedule_id)
    assert enabled.exit_code == 0, enabled.output
    row = await load(core.sessionmaker, schedule_id)
    assert row.enabled
    assert row.next_fire_at is not None


async def test_schedules_delete_removes_it(cli_env: dict[str, str], job: str) -> None:
    schedule_id = await add(cli_env, "--every", "30")
    deleted = await run(cli_env, "schedules", "delete", schedule_id)
    assert deleted.exit_code == 0, deleted.output
    listed = await run(cli_env, "schedules", "list")
    assert schedule_id not in listed.output
    again = await run(cli_env, "schedules", "delete", schedule_id)
    assert again.exit_code == 1
    assert "not found" in again.output


async def test_schedules_add_refuses_a_bad_rule_naming_it(
    cli_env: dict[str, str], job: str
) -> None:
    args = ("schedules", "add", JOB, "--room", ROOM, "--owner", "user@example.com")
    bad = await run(cli_env, *args, "--cron", "every day")
    assert bad.exit_code == 1
    assert "Bad cron expression" in bad.output
    neither = await run(cli_env, *args)
    assert neither.exit_code == 1
    assert "exactly one" in neither.output
