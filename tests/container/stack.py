"""The docker compose stack as a user runs it: `.env` from `.env.example` with real secrets,
`docker compose up -d --build` (with `--scale server=N` for replicas behind the proxy), then
traffic through the published port only. Shared by the stack tests."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.background.leader import LOCK_KEY
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
# What a user's clone holds for `docker compose up`; copied so the test's .env never
# touches a developer's own .env in the repository.
DEPLOY_FILES = (
    "Dockerfile",
    ".dockerignore",
    "docker-compose.yml",
    ".env.example",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "alembic.ini",
    "app",
    "deploy",
    "migrations",
    "sdk/pyproject.toml",
    "sdk/README.md",
)
IMAGE = "jobserver:stack-test"
UP_TIMEOUT = 420.0
READY_TIMEOUT = 180.0
TASK_TIMEOUT = 90.0
TERMINAL = frozenset({"completed", "failed", "cancelled"})
ADMIN_EMAIL = "admin@stack.example.com"


@dataclass
class Stack:
    directory: Path
    project: str
    url: str
    env: dict[str, str]
    admin_password: str
    admin_token: str = ""

    def compose(self, *args: str, timeout: float = 120.0) -> str:
        result = subprocess.run(
            ["docker", "compose", "-p", self.project, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def logs(self) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", "200", timeout=60)
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            return f"(no logs: {exc})"

    def docker(self, *args: str, timeout: float = 120.0) -> str:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result.stdout

    def running_servers(self) -> dict[str, str]:
        """The running server replicas: container id -> address on the compose network."""
        ids = self.compose("ps", "-q", "server").split()
        found: dict[str, str] = {}
        for container in ids:
            state, _, address = self.docker(
                "inspect",
                "-f",
                "{{.State.Running}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                container,
            ).partition(" ")
            if state == "true":
                found[container] = address.strip()
        return found

    def leader_address(self) -> str | None:
        """The address of the connection holding the leader's advisory lock (pg_locks)."""
        high, low = divmod(LOCK_KEY, 1 << 32)
        query = (
            "SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            f" WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {high}"
            f" AND l.objid = {low} AND l.objsubid = 1"
        )
        out = self.compose(
            "exec", "-T", "postgres", "psql", "-U", "jobserver", "-d", "jobserver", "-tAc", query
        ).strip()
        return out or None

    def wait_leader(self, timeout: float, other_than: str | None = None) -> str:
        """The container id of the leader replica, once one (not `other_than`) holds the lock."""
        deadline = time.monotonic() + timeout
        while True:
            address = self.leader_address()
            holders = [c for c, a in self.running_servers().items() if a == address]
            if holders and holders[0] != other_than:
                return holders[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no new leader within {timeout} s (lock held by {address})")
            time.sleep(0.5)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/ready", timeout=5)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1)
        raise AssertionError(f"/ready did not answer 200 in {READY_TIMEOUT}s: {last}")

    def login(self, email: str, password: str) -> str:
        response = httpx.post(
            f"{self.url}/v1/auth/jwt/login", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def register(self, email: str) -> str:
        password = secrets.token_urlsafe(12)
        response = httpx.post(
            f"{self.url}/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return self.login(email, password)

    def submit(self, token: str, room: str, job_name: str, payload: dict[str, Any]) -> str:
        response = httpx.post(
            f"{self.url}/v1/joblib/rooms/{room}/tasks/{job_name}",
            json={"payload": payload},
            headers=bearer(token),
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def task(self, task_id: str, wait: int = 0) -> dict[str, Any]:
        headers = bearer(self.admin_token)
        if wait:
            headers["Prefer"] = f"wait={wait}"
        response = httpx.get(
            f"{self.url}/v1/joblib/tasks/{task_id}", headers=headers, timeout=wait + 10
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_terminal(self, task_id: str, timeout: float = TASK_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.task(task_id, wait=5)
            if task["status"] in TERMINAL:
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} still {task['status']} after {timeout}s")
            time.sleep(0.2)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_env(example: Path, target: Path, values: dict[str, str]) -> None:
    """`cp .env.example .env` plus the edits a user makes; keys the example lacks are added."""
    lines: list[str] = []
    pending = dict(values)
    for line in example.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in pending:
            line = f"{key}={pending.pop(key)}"
        lines.append(line)
    lines.extend(f"{key}={value}" for key, value in pending.items())
    target.write_text("\n".join(lines) + "\n")


def copy_deploy_files(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in DEPLOY_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def compose_env(dotenv: dict[str, str]) -> dict[str, str]:
    # The shell wins over .env in compose interpolation: keep those keys out of it. The
    # stand-in image names (PYTHON_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE) pass through.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_") and k not in dotenv
    }
    env["JOBSERVER_IMAGE"] = IMAGE
    return env


@contextmanager
def compose_stack(
    directory: Path, replicas: int = 1, settings: dict[str, str] | None = None
) -> Iterator[Stack]:
    """A stack up and ready with `replicas` server containers behind the proxy, taken down
    with its volumes afterwards; `settings` are extra .env lines."""
    copy_deploy_files(directory)
    port = free_port()
    admin_password = secrets.token_urlsafe(16)
    dotenv = {
        "JOBSERVER_SECRET_KEY": secrets.token_urlsafe(48),
        "JOBSERVER_DEFAULT_ADMIN_EMAIL": ADMIN_EMAIL,
        "JOBSERVER_DEFAULT_ADMIN_PASSWORD": admin_password,
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "JOBSERVER_PUBLISH_ADDRESS": "127.0.0.1",
        "JOBSERVER_PUBLISH_PORT": str(port),
        "JOBSERVER_IMAGE": IMAGE,
        # Off by default; the test's submitters and workers register themselves.
        "JOBSERVER_ALLOW_REGISTRATION": "true",
        # No @internal extension is on by default; the test opts in to the examples.
        "JOBSERVER_EXAMPLE_EXTENSIONS": "true",
        **(settings or {}),
    }
    write_env(directory / ".env.example", directory / ".env", dotenv)
    placeholders = [
        line
        for line in (directory / ".env").read_text().splitlines()
        # A commented-out placeholder (an optional secret) takes no effect.
        if line.rstrip().endswith("=change-me") and not line.lstrip().startswith("#")
    ]
    assert not placeholders, f".env.example has placeholders the test does not fill: {placeholders}"
    stack = Stack(
        directory=directory,
        project=f"jobserver-test-{uuid.uuid4().hex[:8]}",
        url=f"http://127.0.0.1:{port}",
        env=compose_env(dotenv),
        admin_password=admin_password,
    )
    try:
        # The image is built once per tag and machine; a second stack reuses the cache.
        stack.compose("up", "-d", "--build", "--scale", f"server={replicas}", timeout=UP_TIMEOUT)
        stack.wait_ready()
        stack.admin_token = stack.login(ADMIN_EMAIL, admin_password)
    except BaseException:
        print(stack.logs())
        stack.compose("down", "-v", "--remove-orphans", timeout=180)
        raise
    try:
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", timeout=180)
