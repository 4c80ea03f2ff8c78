"""The real client (zndraw-joblib JobManager + zndraw-socketio) against a live server:
push pick-up, and a transport blip that must not cost the worker."""

from __future__ import annotations

import time

import httpx

from tests.live import LiveServer
from tests.realtime.conftest import GRACE_SECONDS, headers, submit, worker_exists
from tests.realtime.workers import CONNECT_TIMEOUT, served_worker

PUSH_DEADLINE = 5.0  # far below the 30 s polling interval: only the push explains pickup


def task_status(url: str, token: str, task_id: str) -> str:
    response = httpx.get(f"{url}/v1/joblib/tasks/{task_id}", headers=headers(token))
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_job_manager_picks_tasks_up_on_the_task_available_push(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    job = f"{room_id}:modifiers:Echo"
    with served_worker(live.url, user_token, room_id) as worker:
        for x in range(3):
            task_id = submit(live.url, user_token, room_id, job, {"x": x})
            assert worker.next_executed(PUSH_DEADLINE) == task_id
    assert task_status(live.url, user_token, task_id) == "completed"


def test_forced_reconnect_keeps_the_worker_alive(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    job = f"{room_id}:modifiers:Echo"
    with served_worker(live.url, user_token, room_id) as worker:
        worker_id = str(worker.manager._worker_id)
        old_sid = worker.sio.sid
        worker.sio.eio.ws.close()  # the transport dies under the client: a network blip
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while not (worker.sio.connected and worker.sio.sid not in (None, old_sid)):
            assert time.monotonic() < deadline, "client did not reconnect"
            time.sleep(0.05)
        time.sleep(GRACE_SECONDS + 1.5)
        assert worker_exists(live.url, user_token, worker_id)
        task_id = submit(live.url, user_token, room_id, job, {"x": 1})
        assert worker.next_executed(PUSH_DEADLINE) == task_id
        assert not worker.manager._stop.is_set()
