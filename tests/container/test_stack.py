"""The docker compose stack as a user runs it: `.env` from `.env.example` with real secrets,
`docker compose up -d --build`, then traffic through the published port only."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from zndraw_joblib.client import Category, ClaimedTask, Extension, JobManager

from tests.live import ApiManager, free_port

if os.environ.get("JOBSERVER_TEST_CONTAINER") != "1":
    pytest.skip(
        "docker compose stack test: set JOBSERVER_TEST_CONTAINER=1 (needs a Docker engine)",
        allow_module_level=True,
    )

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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("stack")
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
        stack.compose("up", "-d", "--build", timeout=UP_TIMEOUT)
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


@pytest.fixture(autouse=True)
def print_logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    """The compose logs go into the failing test's report (captured stdout)."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        print(stack.logs())


def test_stack_is_ready_and_the_admin_from_env_can_log_in(stack: Stack) -> None:
    me = httpx.get(f"{stack.url}/v1/auth/users/me", headers=bearer(stack.admin_token))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == ADMIN_EMAIL
    assert httpx.get(f"{stack.url}/health").json() == {"status": "ok"}


def test_server_container_runs_as_non_root(stack: Stack) -> None:
    uid = stack.compose("exec", "-T", "server", "id", "-u").strip()
    assert uid != "0"


class StackEcho(Extension):
    """A remote job run by a JobManager on the host."""

    category: ClassVar[Category] = Category.MODIFIER
    text: str = ""

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.text


def test_remote_job_manager_completes_a_task_submitted_by_another_user(stack: Stack) -> None:
    # The worker's account and token come from the CLI in the server container, as the
    # README tells an admin to do it.
    worker_email = f"remote-{uuid.uuid4().hex[:6]}@stack.example.com"
    password = secrets.token_urlsafe(12)
    stack.compose(
        "exec", "-T", "server", "jobserver", "users", "create", worker_email, "--password", password
    )
    worker_token = stack.compose("exec", "-T", "server", "jobserver", "token", worker_email)
    submitter_token = stack.register(f"submitter-{uuid.uuid4().hex[:6]}@stack.example.com")
    seen: list[str] = []

    def execute(task: ClaimedTask[Any]) -> None:
        seen.append(task.extension.text)

    api = ApiManager(stack.url, worker_token.strip())
    # REST only (no Socket.IO client): the manager finds the task by polling.
    manager = JobManager(api, execute=execute, polling_interval=0.5, heartbeat_interval=5)
    try:
        manager.register(StackEcho, room="stack-room")
        task_id = stack.submit(
            submitter_token, "stack-room", "stack-room:modifiers:StackEcho", {"text": "hi"}
        )
        task = stack.wait_terminal(task_id)
    finally:
        manager.disconnect()
        api.close()
    assert task["status"] == "completed", task
    assert seen == ["hi"]


def test_restart_of_the_server_keeps_tasks_and_the_admin_token(stack: Stack) -> None:
    token = stack.register(f"restart-{uuid.uuid4().hex[:6]}@stack.example.com")
    registered = httpx.put(
        f"{stack.url}/v1/joblib/rooms/restart-room/jobs",
        json={"category": "modifiers", "name": "Kept", "schema_": {"type": "object"}},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    worker_id = registered.json()["worker_id"]
    job_name = "restart-room:modifiers:Kept"
    done_id = stack.submit(token, "restart-room", job_name, {"n": 1})
    pending_id = stack.submit(token, "restart-room", job_name, {"n": 2})
    claimed = httpx.post(
        f"{stack.url}/v1/joblib/tasks/claim", json={"worker_id": worker_id}, headers=bearer(token)
    )
    assert claimed.json()["task"]["id"] == done_id
    for status in ("running", "completed"):
        patched = httpx.patch(
            f"{stack.url}/v1/joblib/tasks/{done_id}",
            json={"status": status},
            headers=bearer(token),
        )
        assert patched.status_code == 200, patched.text

    stack.compose("restart", "server", timeout=120)
    stack.wait_ready()

    assert stack.task(done_id)["status"] == "completed"
    assert stack.task(pending_id)["status"] == "pending"
    me = httpx.get(f"{stack.url}/v1/auth/users/me", headers=bearer(stack.admin_token))
    assert me.status_code == 200, me.text


def internal_echo(stack: Stack) -> tuple[str, dict[str, Any]]:
    """The @internal Echo job's full name and a payload its schema accepts."""
    listed = httpx.get(
        f"{stack.url}/v1/joblib/rooms/stack-room/jobs",
        params={"limit": 100},
        headers=bearer(stack.admin_token),
    )
    assert listed.status_code == 200, listed.text
    names = [job["full_name"] for job in listed.json()["items"]]
    echo = [name for name in names if name.startswith("@internal:") and name.endswith(":Echo")]
    assert echo, f"no @internal Echo job is enabled on the stack; jobs: {names}"
    job = httpx.get(
        f"{stack.url}/v1/joblib/rooms/stack-room/jobs/{echo[0]}",
        headers=bearer(stack.admin_token),
    )
    assert job.status_code == 200, job.text
    return echo[0], sample_payload(job.json()["schema"])


def sample_payload(schema: dict[str, Any]) -> dict[str, Any]:
    """Values for the required fields of a flat JSON schema; defaults cover the rest."""
    samples = {"string": "stack", "integer": 1, "number": 0.1, "boolean": True}
    properties = schema.get("properties", {})
    return {
        name: samples.get(properties.get(name, {}).get("type", "string"), "stack")
        for name in schema.get("required", [])
    }


def test_internal_echo_task_completes_on_the_worker_container(stack: Stack) -> None:
    job_name, payload = internal_echo(stack)
    # With the worker stopped the task must wait: whatever completes it is the container.
    stack.compose("stop", "--timeout", "10", "worker", timeout=60)
    task_id = stack.submit(stack.admin_token, "stack-room", job_name, payload)
    time.sleep(2)
    assert stack.task(task_id)["status"] not in TERMINAL
    stack.compose("start", "worker", timeout=60)
    task = stack.wait_terminal(task_id)
    assert task["status"] == "completed", task


def test_two_scaled_workers_complete_ten_internal_tasks(stack: Stack) -> None:
    job_name, payload = internal_echo(stack)
    stack.compose(
        "up", "-d", "--no-build", "--no-deps", "--scale", "worker=2", "worker", timeout=120
    )
    assert len(stack.compose("ps", "-q", "worker").split()) == 2
    task_ids = [stack.submit(stack.admin_token, "stack-room", job_name, payload) for _ in range(10)]
    statuses = [stack.wait_terminal(task_id)["status"] for task_id in task_ids]
    assert statuses == ["completed"] * 10
