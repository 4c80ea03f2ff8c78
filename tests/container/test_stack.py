"""The docker compose stack as a user runs it (tests/container/stack.py), first with one
server replica behind the proxy, then with three (`--scale server=3`): readiness, the admin
from .env, remote and @internal workers, a restart, Socket.IO through the proxy as browsers
and python clients connect, and the load run (tests/container/load.py) on each, the three
replicas losing their leader to `docker kill` and another replica to a restart meanwhile.

One module, classes in order: pytest-xdist's loadfile keeps both stacks on one worker, one
after the other (a class-scoped stack is down before the next class starts), so the two
throughput figures come from the same conditions."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import socketio
import websocket
from zndraw_joblib.client import Category, ClaimedTask, Extension, JobManager

from tests.container import load
from tests.container.stack import (
    ADMIN_EMAIL,
    TERMINAL,
    Stack,
    bearer,
    compose_stack,
)
from tests.live import ApiManager

if os.environ.get("JOBSERVER_TEST_CONTAINER") != "1":
    pytest.skip(
        "docker compose stack test: set JOBSERVER_TEST_CONTAINER=1 (needs a Docker engine)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPLICAS = 3
LEADER_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def print_logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    """The compose logs go into the failing test's report (captured stdout)."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        print(stack.logs())


class StackEcho(Extension):
    """A remote job run by a JobManager on the host."""

    category: ClassVar[Category] = Category.MODIFIER
    text: str = ""

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.text


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


def engineio_handshake(stack: Stack, origin: str, headers: list[str] | None = None) -> str:
    """Open a Socket.IO WebSocket as a browser does (its Origin header, no cookie) and
    return Engine.IO's open packet."""
    url = stack.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    connection = websocket.create_connection(url, origin=origin, header=headers or [], timeout=10)
    try:
        return str(connection.recv())
    finally:
        connection.close()


class TestOneReplica:
    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        with compose_stack(tmp_path_factory.mktemp("stack"), settings=load.SETTINGS) as started:
            yield started

    def test_stack_is_ready_and_the_admin_from_env_can_log_in(self, stack: Stack) -> None:
        me = httpx.get(f"{stack.url}/v1/auth/users/me", headers=bearer(stack.admin_token))
        assert me.status_code == 200, me.text
        assert me.json()["email"] == ADMIN_EMAIL
        assert httpx.get(f"{stack.url}/health").json() == {"status": "ok"}

    def test_server_container_runs_as_non_root(self, stack: Stack) -> None:
        uid = stack.compose("exec", "-T", "server", "id", "-u").strip()
        assert uid != "0"

    def test_remote_job_manager_completes_a_task_submitted_by_another_user(
        self, stack: Stack
    ) -> None:
        # The worker's account and token come from the CLI in the server container, as the
        # README tells an admin to do it.
        worker_email = f"remote-{uuid.uuid4().hex[:6]}@stack.example.com"
        password = secrets.token_urlsafe(12)
        stack.compose(
            "exec",
            "-T",
            "server",
            "jobserver",
            "users",
            "create",
            worker_email,
            "--password",
            password,
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

    def test_restart_of_the_server_keeps_tasks_and_the_admin_token(self, stack: Stack) -> None:
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
            f"{stack.url}/v1/joblib/tasks/claim",
            json={"worker_id": worker_id},
            headers=bearer(token),
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

    def test_internal_echo_task_completes_on_the_worker_container(self, stack: Stack) -> None:
        job_name, payload = internal_echo(stack)
        # With the worker stopped the task must wait: whatever completes it is the container.
        stack.compose("stop", "--timeout", "10", "worker", timeout=60)
        task_id = stack.submit(stack.admin_token, "stack-room", job_name, payload)
        time.sleep(2)
        assert stack.task(task_id)["status"] not in TERMINAL
        stack.compose("start", "worker", timeout=60)
        task = stack.wait_terminal(task_id)
        assert task["status"] == "completed", task

    def test_two_scaled_workers_complete_ten_internal_tasks(self, stack: Stack) -> None:
        job_name, payload = internal_echo(stack)
        stack.compose(
            "up", "-d", "--no-build", "--no-deps", "--scale", "worker=2", "worker", timeout=120
        )
        assert len(stack.compose("ps", "-q", "worker").split()) == 2
        task_ids = [
            stack.submit(stack.admin_token, "stack-room", job_name, payload) for _ in range(10)
        ]
        statuses = [stack.wait_terminal(task_id)["status"] for task_id in task_ids]
        assert statuses == ["completed"] * 10

    def test_load_run_on_one_replica_completes_every_task_exactly_once(
        self, stack: Stack, tmp_path: Path, record_property: Callable[[str, object], None]
    ) -> None:
        run = load.run_load(stack, tmp_path, replicas=1)
        print(run.summary())
        record_property("stack_load", run.summary())
        load.assert_exactly_once_and_no_worker_lost(run)


class TestThreeReplicas:
    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        directory = tmp_path_factory.mktemp("scaled")
        with compose_stack(directory, replicas=REPLICAS, settings=load.SETTINGS) as started:
            yield started

    def test_three_server_replicas_run_behind_the_one_published_proxy(self, stack: Stack) -> None:
        servers = stack.running_servers()
        assert len(servers) == REPLICAS
        # Only the proxy has a host port: the replicas are reached through it.
        for container in servers:
            bindings = stack.docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", container)
            assert bindings.strip() in ("{}", "null"), bindings
        assert httpx.get(f"{stack.url}/ready").status_code == 200

    def test_websocket_upgrade_with_the_pages_origin_passes_the_proxy(self, stack: Stack) -> None:
        assert engineio_handshake(stack, origin=stack.url).startswith('0{"sid"')

    def test_https_origin_passes_when_a_tls_proxy_in_front_says_https(self, stack: Stack) -> None:
        # What the compose proxy receives from a TLS-terminating proxy on the host.
        https_origin = stack.url.replace("http://", "https://")
        opened = engineio_handshake(stack, https_origin, ["X-Forwarded-Proto: https"])
        assert opened.startswith('0{"sid"')

    def test_websocket_from_a_foreign_origin_is_refused(self, stack: Stack) -> None:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            engineio_handshake(stack, origin="http://elsewhere.example.com")
        assert refused.value.status_code == 403

    def test_socketio_long_polling_sessions_stick_to_one_replica(self, stack: Stack) -> None:
        # Every request of a polling session must reach the replica that opened it; with three
        # replicas in round robin most of these connects would fail.
        token = load.register(stack, "polling")
        for _ in range(6):
            client = socketio.Client(reconnection=False)
            client.connect(
                stack.url, auth={"token": token}, transports=["polling"], wait_timeout=10
            )
            try:
                for room in ("a", "b", "c"):
                    assert client.call("room_join", {"room_id": room}, timeout=10) == {
                        "room_id": room
                    }
            finally:
                client.disconnect()

    def test_load_run_survives_a_killed_leader_and_a_restarted_replica(
        self, stack: Stack, tmp_path: Path, record_property: Callable[[str, object], None]
    ) -> None:
        chaos: dict[str, str] = {}
        marks: dict[str, float] = {}

        def kill_the_leader() -> None:
            leader = stack.wait_leader(LEADER_TIMEOUT)
            chaos["killed"] = leader
            marks["killed"] = time.monotonic()
            stack.docker("kill", leader)
            chaos["new_leader"] = stack.wait_leader(LEADER_TIMEOUT, other_than=leader)

        def restart_the_new_leader() -> None:
            chaos["restarted"] = chaos["new_leader"]
            marks["restarted"] = time.monotonic()
            stack.docker("restart", "--time", "10", chaos["restarted"])
            chaos["last_leader"] = stack.wait_leader(LEADER_TIMEOUT)

        run = load.run_load(
            stack,
            tmp_path,
            replicas=REPLICAS,
            disruptions={600: kill_the_leader, 1300: restart_the_new_leader},
        )
        summary = run.summary() + "; meanwhile the leader killed, the next leader restarted"
        print(summary)
        record_property("stack_load", summary)
        print("stack load disruptions: " + ", ".join(f"{k} {v[:12]}" for k, v in chaos.items()))

        load.assert_exactly_once_and_no_worker_lost(run)
        assert chaos["new_leader"] != chaos["killed"]
        assert chaos["last_leader"] in stack.running_servers()
        # The room listener heard status events after each disruption, not only before.
        assert run.listener.events_since(marks["killed"]) > 0
        assert run.listener.events_since(marks["restarted"]) > 0
        assert run.listener_connected_at_end
