"""What uv installs: the server's runtime dependencies apart from the test tooling (the
`dev` group, which `uv run pytest` installs and `--no-dev` leaves out; README "Two
commands", .ci/run)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
TEST_COMMAND = "uv run pytest"
TOOLING = {"pytest", "pytest-asyncio", "pytest-xdist", "playwright", "mypy", "ruff", "moto"}


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0] for requirement in requirements}


def test_runtime_dependencies_hold_no_test_tooling() -> None:
    project = PYPROJECT["project"]
    runtime = names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        runtime |= names(extra)
    assert {"fastapi", "uvicorn", "sqlalchemy", "typer"} <= runtime
    assert runtime.isdisjoint(TOOLING)


def test_the_dev_group_holds_the_test_tooling() -> None:
    assert names(PYPROJECT["dependency-groups"]["dev"]) >= TOOLING


def test_the_dev_group_is_what_uv_run_installs_by_default() -> None:
    assert "default-groups" not in PYPROJECT.get("tool", {}).get("uv", {})


def test_readme_and_ci_run_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "uv run jobserver serve " in readme
    assert f"{TEST_COMMAND}              # the tests" in readme
    assert ci[-1].endswith(TEST_COMMAND)
    assert any(line.startswith("uv sync --locked") for line in ci)
