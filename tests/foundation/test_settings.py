"""Settings: .env.example matches the class, contract names, `jobserver config`.

The only tests that touch os.environ (through monkeypatch), because reading the
environment is the rule under test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner
from zndraw_joblib.settings import JobLibSettings

from app.bootstrap import resolve_secret
from app.cli import app as cli
from app.settings import (
    CONTRACT_ENV_PREFIX,
    ENV_PREFIX,
    GENERATED_SECRET_FILE,
    PLACEHOLDER_SECRETS,
    SECRET_FIELDS,
    Settings,
)

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?:#\s*)?(JOBSERVER_[A-Z0-9_]+)=(.*)$")
CONTRACT_FIELDS = sorted(JobLibSettings.model_fields)
COMPOSE_BLOCK_MARKER = "# --- docker compose"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No JOBSERVER_/ZNDRAW_JOBLIB_ variable of the machine leaks into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"{ENV_PREFIX}{name.upper()}", raising=False)
        monkeypatch.delenv(f"{CONTRACT_ENV_PREFIX}{name.upper()}", raising=False)


def example_lines() -> dict[str, tuple[str, bool]]:
    """ENV_NAME -> (value, commented out) from .env.example."""
    found: dict[str, tuple[str, bool]] = {}
    text = (ROOT / ".env.example").read_text()
    # The docker compose block at the end holds variables of the compose file, not Settings.
    settings_part = text.split(COMPOSE_BLOCK_MARKER, 1)[0]
    for line in settings_part.splitlines():
        match = LINE.match(line.strip())
        if match:
            found[match[1]] = (match[2], line.lstrip().startswith("#"))
    return found


def test_env_example_lists_every_setting() -> None:
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(example_lines()) == expected


def test_env_example_values_are_the_defaults(tmp_path: Path) -> None:
    lines = example_lines()
    env_file = tmp_path / "example.env"
    env_file.write_text(
        "".join(
            f"{name}={value}\n"
            for name, (value, commented) in lines.items()
            if not commented and name.removeprefix(ENV_PREFIX).lower() not in SECRET_FIELDS
        )
    )
    loaded = Settings(_env_file=env_file)  # type: ignore[call-arg]
    for name, field in Settings.model_fields.items():
        value, commented = lines[f"{ENV_PREFIX}{name.upper()}"]
        if name in SECRET_FIELDS:
            assert value in PLACEHOLDER_SECRETS, name
        elif commented:
            assert field.default is None, f"{name} is commented out but has a default"
        else:
            assert getattr(loaded, name) == field.default, name


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        name for name in Settings.model_fields if f"| `{ENV_PREFIX}{name.upper()}`" not in readme
    ]
    assert missing == []


@pytest.mark.parametrize("field", sorted(SECRET_FIELDS))
def test_placeholder_secret_is_refused(field: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(_env_file=None, **{field: "change-me"})  # type: ignore[arg-type]


def test_every_contract_setting_exists_with_the_contract_default() -> None:
    for name in CONTRACT_FIELDS:
        assert name in Settings.model_fields, name
        assert Settings.model_fields[name].default == JobLibSettings.model_fields[name].default


@pytest.mark.parametrize("name", CONTRACT_FIELDS)
def test_contract_setting_is_read_under_its_zndraw_joblib_name(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = ["a", "b"] if name.startswith("allowed") else 7
    monkeypatch.setenv(f"{CONTRACT_ENV_PREFIX}{name.upper()}", json.dumps(value))
    assert getattr(Settings(_env_file=None), name) == value  # type: ignore[call-arg]


@pytest.mark.parametrize("name", CONTRACT_FIELDS)
def test_jobserver_name_wins_over_zndraw_joblib_name(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = (["ours"], ["theirs"]) if name.startswith("allowed") else (8, 9)
    monkeypatch.setenv(f"{CONTRACT_ENV_PREFIX}{name.upper()}", json.dumps(theirs))
    monkeypatch.setenv(f"{ENV_PREFIX}{name.upper()}", json.dumps(ours))
    assert getattr(Settings(_env_file=None), name) == ours  # type: ignore[call-arg]


def config_output(env: dict[str, str], *flags: str) -> str:
    result = CliRunner().invoke(cli, ["config", *flags], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_config_prints_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    env = {
        "JOBSERVER_DATA_DIR": str(tmp_path),
        "JOBSERVER_SECRET_KEY": "s3cret-value-that-must-not-be-printed-0123",
        "JOBSERVER_DEFAULT_ADMIN_PASSWORD": "admin-pass-not-printed",
        "JOBSERVER_DATABASE_URL": "postgresql+asyncpg://jobs:dbpass-hidden@db:5432/jobs",
        "ZNDRAW_JOBLIB_WORKER_TIMEOUT_SECONDS": "42",
    }
    output = config_output(env)
    shown = dict(line.removeprefix("# ").split("=", 1) for line in output.splitlines())
    assert set(shown) == {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert shown["JOBSERVER_WORKER_TIMEOUT_SECONDS"] == "42"
    assert shown["JOBSERVER_SECRET_KEY"] == "********"
    assert shown["JOBSERVER_DATABASE_URL"] == "postgresql+asyncpg://jobs:****@db:5432/jobs"
    for secret in ("s3cret-value", "admin-pass-not-printed", "dbpass-hidden"):
        assert secret not in output


def test_config_prints_lists_as_json_and_unset_settings_commented_out(tmp_path: Path) -> None:
    lines = config_output({"JOBSERVER_DATA_DIR": str(tmp_path)}).splitlines()
    assert 'JOBSERVER_ALLOWED_CATEGORIES=["modifiers", "selections", "analysis"]' in lines
    assert "JOBSERVER_ALLOW_REGISTRATION=false" in lines
    assert "# JOBSERVER_REDIS_URL=" in lines
    assert "# JOBSERVER_ALLOWED_PROVIDER_CATEGORIES=" in lines


def test_config_with_show_secrets_is_a_dotenv_that_reproduces_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "JOBSERVER_DATA_DIR": str(tmp_path / "data"),
        "JOBSERVER_SECRET_KEY": "a-secret-key-that-is-long-enough-0123456789",
        "JOBSERVER_DATABASE_URL": "postgresql+asyncpg://jobs:pw@db:5432/jobs",
        "JOBSERVER_ALLOWED_PROVIDER_CATEGORIES": '["filesystem", "x y"]',
        "JOBSERVER_ALLOW_REGISTRATION": "true",
        "JOBSERVER_RETRY_BACKOFF_BASE_SECONDS": "0.5",
    }
    dotenv = tmp_path / ".env"
    dotenv.write_text(config_output(env, "--show-secrets"))
    loaded = Settings(_env_file=dotenv)  # type: ignore[call-arg]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert loaded.model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]
    assert loaded.allowed_provider_categories == ["filesystem", "x y"]


def test_config_names_the_file_that_keeps_a_generated_secret(tmp_path: Path) -> None:
    env = {"JOBSERVER_DATA_DIR": str(tmp_path)}
    path = (tmp_path / GENERATED_SECRET_FILE).absolute()
    before = config_output(env).splitlines()
    assert f"# JOBSERVER_SECRET_KEY=  (unset: generated into {path} at the first start)" in before
    key = resolve_secret(Settings(_env_file=None, data_dir=tmp_path))  # type: ignore[call-arg]
    note = f"# JOBSERVER_SECRET_KEY is unset: the key generated for embedded mode is kept in {path}"
    masked = config_output(env)
    assert [note, "# JOBSERVER_SECRET_KEY="] == [
        line for line in masked.splitlines() if "JOBSERVER_SECRET_KEY" in line
    ]
    assert key not in masked
    shown = config_output(env, "--show-secrets").splitlines()
    assert f"JOBSERVER_SECRET_KEY={key}" in shown


def test_config_says_a_postgresql_server_needs_a_secret(tmp_path: Path) -> None:
    env = {
        "JOBSERVER_DATA_DIR": str(tmp_path),
        "JOBSERVER_DATABASE_URL": "postgresql+asyncpg://jobs@db:5432/jobs",
    }
    lines = config_output(env).splitlines()
    assert "# JOBSERVER_SECRET_KEY=  (unset: required with PostgreSQL)" in lines


def test_leader_lock_takes_the_leader_database_url_when_postgresql_is_set() -> None:
    pooled = "postgresql+asyncpg://jobs:pw@pgbouncer:6432/jobs"
    direct = "postgresql+asyncpg://jobs:pw@postgres:5432/jobs"
    assert Settings(database_url=pooled).effective_leader_database_url == pooled
    split = Settings(database_url=pooled, leader_database_url=direct)
    assert split.effective_leader_database_url == direct
    # SQLite has no leader lock connection: one process is always its own leader.
    sqlite = Settings(leader_database_url=direct)
    assert sqlite.effective_leader_database_url == sqlite.effective_database_url
