"""The real zndraw-joblib JobManager (REST only) against a live `jobserver serve`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from zndraw_joblib.client import Category, ClaimedTask, Extension, JobManager

from tests.live import ApiManager, LiveServer, live_server

TASKS = 20
DEADLINE_SECONDS = 60


class Double(Extension):
    category: ClassVar[Category] = Category.MODIFIER
    value: int = 0

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.value * 2


class Explode(Extension):
    category: ClassVar[Category] = Category.ANALYSIS
    reason: str = "boom"

    def run(self, vis: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"exploded: {self.reason}")


def execute(task: ClaimedTask) -> None:
    task.extension.run(None, **task.run_kwargs)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with live_server(database_url, data_dir) as running:
        yield running


@contextlib.contextmanager
def _manager(server: LiveServer, token: str) -> Iterator[JobManager]:
    """A REST-only auto-serving JobManager, disconnected (worker deleted) on exit."""
    api = ApiManager(server.url, token)
    manager = JobManager(api, None, execute=execute, polling_interval=0.05, heartbeat_interval=1.0)
    try:
        yield manager
    finally:
        manager.disconnect()
        api.close()


def _final_status(server: LiveServer, token: str, task_id: str) -> dict[str, Any]:
    """Long-poll until the task is terminal."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=10"}
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/v1/joblib/tasks/{task_id}", headers=headers, timeout=30)
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
    raise AssertionError(f"task {task_id} not finished after {DEADLINE_SECONDS}s")


@pytest.mark.slow
@pytest.mark.parametrize("room", ["room_1", "@global"])
def test_job_manager_runs_twenty_tasks_to_completion(server: LiveServer, room: str) -> None:
    token = server.token() if room == "@global" else server.register_user("worker@example.com")
    with _manager(server, token) as manager:
        manager.register(Double, room=room)
        assert manager.worker_id is not None
        ids = [manager.submit(Double(value=i), "room_1", job_room=room) for i in range(TASKS)]
        finals = [_final_status(server, token, task_id) for task_id in ids]
    assert [t["status"] for t in finals] == ["completed"] * TASKS
    assert {t["job_name"] for t in finals} == {f"{room}:modifiers:Double"}
    assert all(t["worker_id"] == str(finals[0]["worker_id"]) for t in finals)


@pytest.mark.slow
def test_raising_extension_ends_failed_with_its_error_text(server: LiveServer) -> None:
    token = server.register_user("worker@example.com")
    with _manager(server, token) as manager:
        manager.register(Explode, room="room_1")
        task_id = manager.submit(Explode(reason="bad input"), "room_1", job_room="room_1")
        final = _final_status(server, token, task_id)
    assert final["status"] == "failed"
    assert final["error"] == "exploded: bad input"


@pytest.mark.slow
def test_disconnect_deletes_the_worker_and_soft_deletes_its_job(server: LiveServer) -> None:
    token = server.register_user("worker@example.com")
    with _manager(server, token) as manager:
        manager.register(Double, room="room_1")
        worker_id = manager.worker_id
    headers = {"Authorization": f"Bearer {token}"}
    heartbeat = httpx.patch(f"{server.url}/v1/joblib/workers/{worker_id}", headers=headers)
    assert heartbeat.status_code == 404
    job = httpx.get(
        f"{server.url}/v1/joblib/rooms/room_1/jobs/room_1:modifiers:Double", headers=headers
    )
    assert job.status_code == 404
