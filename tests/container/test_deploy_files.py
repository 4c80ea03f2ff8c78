"""The deploy files' promises that need no Docker engine: no secret in the compose file, and
the secret shipped in .env.example is one the server refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_secret_is_a_placeholder_the_server_refuses() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(_env_file=ROOT / ".env.example")


def test_compose_file_takes_every_password_from_env() -> None:
    lines = [
        line
        for line in (ROOT / "docker-compose.yml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    secret_lines = [line for line in lines if re.search(r"(PASSWORD|SECRET)\w*:", line)]
    assert secret_lines
    assert all("${POSTGRES_PASSWORD" in line for line in secret_lines), secret_lines
    assert not [line for line in lines if "SECRET_KEY" in line]
