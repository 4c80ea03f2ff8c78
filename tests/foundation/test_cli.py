"""The `jobserver` CLI through typer's CliRunner, settings passed as the runner's env."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from app.cli import app as cli
from app.services import tokens
from tests.conftest import TEST_SECRET, bearer, login

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "JOBSERVER_DATABASE_URL": database_url,
        "JOBSERVER_SECRET_KEY": TEST_SECRET,
        "JOBSERVER_DATA_DIR": str(tmp_path / "cli-data"),
    }


async def run(env: dict[str, str], *args: str) -> Result:
    """Invoke in a thread: the commands call asyncio.run, which needs a loop-free thread."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group; typer ships its own click, so no isinstance checks."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*prefix, name))
    return paths


def test_every_command_has_help() -> None:
    paths = command_paths(get_command(cli))
    assert ("db", "check") in paths
    assert ("users", "set-password") in paths
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


# --- db ---------------------------------------------------------------------


async def test_db_current_reports_head(cli_env: dict[str, str]) -> None:
    result = await run(cli_env, "db", "current")
    assert result.exit_code == 0, result.output
    current, head = (line.split()[-1] for line in result.output.splitlines())
    assert current == head


async def test_db_downgrade_then_upgrade(cli_env: dict[str, str]) -> None:
    assert (await run(cli_env, "db", "downgrade", "base")).exit_code == 0
    behind = await run(cli_env, "db", "current")
    assert behind.exit_code == 1
    assert "(empty)" in behind.output
    upgraded = await run(cli_env, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert (await run(cli_env, "db", "current")).exit_code == 0


async def test_db_check_passes_on_a_migrated_database(cli_env: dict[str, str]) -> None:
    result = await run(cli_env, "db", "check")
    assert result.exit_code == 0, result.output
    assert "matches" in result.output


async def test_db_check_fails_cleanly_on_an_empty_database(cli_env: dict[str, str]) -> None:
    assert (await run(cli_env, "db", "downgrade", "base")).exit_code == 0
    result = await run(cli_env, "db", "check")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "jobserver db upgrade" in result.output


# --- users ------------------------------------------------------------------


async def test_users_create_list_set_role_set_password(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    created = await run(
        cli_env,
        "users",
        "create",
        "cli@example.com",
        "--password",
        "password-one",
        "--role",
        "viewer",
    )
    assert created.exit_code == 0, created.output
    listed = await run(cli_env, "users", "list")
    assert "cli@example.com\tviewer\tactive" in listed.output.splitlines()
    assert (await run(cli_env, "users", "set-role", "cli@example.com", "admin")).exit_code == 0
    changed = await run(
        cli_env, "users", "set-password", "cli@example.com", "--password", "password-two"
    )
    assert changed.exit_code == 0, changed.output
    token = await login(client, "cli@example.com", "password-two")
    me = (await client.get("/v1/auth/users/me", headers=bearer(token))).json()
    assert (me["role"], me["is_superuser"]) == ("admin", True)


async def test_users_create_rejects_an_unknown_role(cli_env: dict[str, str]) -> None:
    result = await run(
        cli_env, "users", "create", "x@example.com", "--password", "password-x", "--role", "boss"
    )
    assert result.exit_code == 1
    assert "error:" in result.output


async def test_users_create_rejects_a_duplicate(cli_env: dict[str, str]) -> None:
    args = ("users", "create", "dup@example.com", "--password", "password-dup")
    assert (await run(cli_env, *args)).exit_code == 0
    again = await run(cli_env, *args)
    assert again.exit_code == 1
    assert "already exists" in again.output


async def test_set_role_of_an_unknown_user_fails(cli_env: dict[str, str]) -> None:
    result = await run(cli_env, "users", "set-role", "nobody@example.com", "admin")
    assert result.exit_code == 1
    assert "not found" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("users", "create", "notanemail", "--password", "a-long-password"),
        ("users", "create", "short@example.com", "--password", "x"),
    ],
    ids=["bad-email", "short-password"],
)
async def test_users_create_refuses_a_bad_email_or_a_short_password(
    cli_env: dict[str, str], args: tuple[str, ...]
) -> None:
    result = await run(cli_env, *args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    listed = await run(cli_env, "users", "list")
    assert args[2] not in listed.output


async def test_users_set_password_refuses_a_short_password(cli_env: dict[str, str]) -> None:
    args = ("users", "create", "p@example.com", "--password", "a-long-password")
    assert (await run(cli_env, *args)).exit_code == 0
    result = await run(cli_env, "users", "set-password", "p@example.com", "--password", "x")
    assert result.exit_code == 1
    assert "at least 10 characters" in result.output


async def test_users_set_password_and_set_role_end_existing_tokens(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    args = ("users", "create", "t@example.com", "--password", "a-long-password")
    assert (await run(cli_env, *args)).exit_code == 0
    for change in (
        ("users", "set-password", "t@example.com", "--password", "another-password"),
        ("users", "set-role", "t@example.com", "viewer"),
    ):
        minted = await run(cli_env, "token", "t@example.com")
        token = minted.stdout.strip()
        assert (await client.get("/v1/auth/users/me", headers=bearer(token))).status_code == 200
        assert (await run(cli_env, *change)).exit_code == 0
        assert (await client.get("/v1/auth/users/me", headers=bearer(token))).status_code == 401


# --- token ------------------------------------------------------------------


async def test_token_mints_a_jwt_that_works_against_the_app(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    assert (
        await run(cli_env, "users", "create", "worker@example.com", "--password", "password-w")
    ).exit_code == 0
    result = await run(cli_env, "token", "worker@example.com", "--lifetime", "120")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"], audience=tokens.AUDIENCE)
    assert claims["exp"] - claims["iat"] == 120
    me = await client.get("/v1/auth/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["email"] == "worker@example.com"
    workers = await client.post("/v1/joblib/workers", headers=bearer(token))
    assert workers.status_code == 201


@pytest.mark.parametrize("lifetime", ["-5", "0", "2592001"])
async def test_token_lifetime_must_be_positive_and_at_most_the_maximum(
    cli_env: dict[str, str], lifetime: str
) -> None:
    args = ("users", "create", "l@example.com", "--password", "a-long-password")
    assert (await run(cli_env, *args)).exit_code == 0
    result = await run(cli_env, "token", "l@example.com", "--lifetime", lifetime)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: Token lifetime" in result.output


async def test_token_for_an_unknown_user_fails(cli_env: dict[str, str]) -> None:
    result = await run(cli_env, "token", "nobody@example.com")
    assert result.exit_code == 1
    assert "not found" in result.output


# --- serve refusals (before uvicorn starts) ---------------------------------


async def test_serve_on_postgresql_refuses_without_secret_key(tmp_path: Path) -> None:
    env = {
        "JOBSERVER_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        "JOBSERVER_DATA_DIR": str(tmp_path),
    }
    result = await run(env, "serve")
    assert result.exit_code == 1
    assert "JOBSERVER_SECRET_KEY is required" in result.output


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_serve_on_postgresql_refuses_an_out_of_date_schema(cli_env: dict[str, str]) -> None:
    assert (await run(cli_env, "db", "downgrade", "base")).exit_code == 0
    result = await run(cli_env, "serve")
    assert result.exit_code == 1
    assert "run `jobserver db upgrade`" in result.output


# --- start-up cost, --version -------------------------------------------------

# What the server needs and `--help` must not load (each takes from tens of milliseconds
# to seconds to import); commands import them when they run. (Not pydantic: typer itself
# loads it to convert a group's options.)
HEAVY_PACKAGES = (
    "alembic",
    "asyncpg",
    "fastapi",
    "prometheus_client",
    "pydantic_settings",
    "redis",
    "rich",
    "socketio",
    "sqlalchemy",
    "starlette",
    "taskiq",
    "uvicorn",
)
HELP_PROBE = """
import json, sys
from app.cli import app
for args in ([], ["tasks"], ["tasks", "list"], ["db"], ["users", "create"], ["config"]):
    app([*args, "--help"], prog_name="jobserver", standalone_mode=False)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_help_imports_none_of_the_servers_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    *help_text, loaded_line = result.stdout.splitlines()
    assert any("tasks" in line for line in help_text)
    loaded = set(json.loads(loaded_line))
    assert loaded.isdisjoint(HEAVY_PACKAGES), sorted(loaded & set(HEAVY_PACKAGES))


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"jobserver {version('jobserver')}\n"
