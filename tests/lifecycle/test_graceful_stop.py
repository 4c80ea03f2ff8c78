"""A server stopped by SIGTERM loses no work: it exits within 10 s although a long-poll is
open, cleans up none of its workers, and after a restart every running task completes once."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from jobserver_sdk import JobService

from tests.live import LiveServer, free_port, server_env, start_server
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, Count

pytestmark = pytest.mark.slow

TASKS = 4
HANDLER_SECONDS = 4.0
EXIT_WITHIN_SECONDS = 10.0
SERVER_SETTINGS = {
    # Far shorter than any stop: a cleanup timer started by the stop itself would fire.
    "JOBSERVER_DISCONNECT_GRACE_SECONDS": "1",
    "JOBSERVER_LOG_LEVEL": "info",  # the cleanup's log line is at info
}


async def _until_all_started(tag: str) -> None:
    async with asyncio.timeout(20):
        while True:
            if sum(EXECUTIONS[f"{tag}:{n}"] for n in range(TASKS)) == TASKS:
                return
            await asyncio.sleep(0.02)


def _long_poll(url: str, token: str, task_id: uuid.UUID) -> httpx.Response:
    return httpx.get(
        f"{url}/v1/joblib/tasks/{task_id}",
        headers={"Authorization": f"Bearer {token}", "Prefer": "wait=60"},
        timeout=90,
    )


def _stop(live: LiveServer, sig: signal.Signals = signal.SIGTERM) -> float:
    """The seconds from the signal until the process exited."""
    started = time.monotonic()
    live.process.send_signal(sig)
    live.process.wait(timeout=60)
    return time.monotonic() - started


async def test_sigterm_with_tasks_running_and_a_long_poll_open_loses_no_work(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = server_env(database_url, tmp_path, **SERVER_SETTINGS)
    live = start_server(env, tmp_path / "server.log", port)
    try:
        token = live.token()
        room = f"stop{uuid.uuid4().hex[:8]}"
        tag = uuid.uuid4().hex
        async with (
            JobService(live.url, token, room=room) as service,
            workers(live.url, token, room, [Count], concurrency=TASKS),
        ):
            jobs = [Count(tag=tag, n=n, seconds=HANDLER_SECONDS) for n in range(TASKS)]
            tasks = await service.submit_many(jobs)
            await _until_all_started(tag)
            poll = asyncio.create_task(asyncio.to_thread(_long_poll, live.url, token, tasks[0].id))
            await asyncio.sleep(0.5)  # the long-poll is open on the server
            took = await asyncio.to_thread(_stop, live)
            answered = await poll
            restarted = await asyncio.to_thread(start_server, live.env, live.log_path, port)
            live.process = restarted.process
            results = await asyncio.gather(*(task.result(timeout=60) for task in tasks))
        assert took < EXIT_WITHIN_SECONDS, live.log()
        assert answered.status_code == 200
        assert answered.json()["status"] in {"claimed", "running"}
        assert results == list(range(TASKS))
        assert [EXECUTIONS[f"{tag}:{n}"] for n in range(TASKS)] == [1] * TASKS
        assert "cleaned up worker" not in live.log()
    finally:
        live.kill()


def _pending_task(url: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    room = f"stop{uuid.uuid4().hex[:8]}"
    job = {"category": "modifiers", "name": "Echo", "schema_": {}}
    registered = httpx.put(f"{url}/v1/joblib/rooms/{room}/jobs", json=job, headers=headers)
    assert registered.status_code == 201, registered.text
    submitted = httpx.post(
        f"{url}/v1/joblib/rooms/{room}/tasks/{room}:modifiers:Echo",
        json={"payload": {}},
        headers=headers,
    )
    assert submitted.status_code == 202, submitted.text
    return str(submitted.json()["id"])


@pytest.mark.parametrize(
    ("args", "sig"),
    [([], signal.SIGINT), (["--workers", "2"], signal.SIGTERM)],
    ids=["one-process-ctrl-c", "two-processes-sigterm"],
)
async def test_stop_with_a_long_poll_open_exits_within_10_s_and_answers_it(
    database_url: str, tmp_path: Path, args: list[str], sig: signal.Signals
) -> None:
    live = start_server(server_env(database_url, tmp_path), tmp_path / "server.log", args=args)
    try:
        token = live.token()
        task_id = uuid.UUID(await asyncio.to_thread(_pending_task, live.url, token))
        poll = asyncio.create_task(asyncio.to_thread(_long_poll, live.url, token, task_id))
        await asyncio.sleep(1.0)  # the long-poll is open (in one of the processes)
        took = await asyncio.to_thread(_stop, live, sig)
        answered = await poll
    finally:
        live.kill()
    assert took < EXIT_WITHIN_SECONDS, live.log()
    assert (answered.status_code, answered.json()["status"]) == (200, "pending")
