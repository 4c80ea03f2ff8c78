"""@internal jobs on Redis: a real `jobserver worker` subprocess runs them (§2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from app.background.sweeper import INTERNAL_TIMEOUT, fail_stuck_internal_tasks, take_lost_dispatches
from app.db.models import Task
from app.realtime.server import REDIS_CHANNEL
from app.settings import Settings
from app.state import Core
from tests.background.test_internal import submit, wait_terminal

pytestmark = pytest.mark.slow

EXTENSIONS = "app.internal.examples:Echo,app.internal.examples:Sleep"
SOCKETIO_CHANNEL = REDIS_CHANNEL  # the server's Socket.IO fan-out channel
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    # The leader's repair pass runs too: Redis is disposable (DESIGN), and on a shared test
    # Redis other suites flush the queue; re-sent messages must still finish every task.
    return {
        "redis_url": redis_url,
        "internal_extensions": EXTENSIONS,
        "background_enabled": True,
        "sweeper_interval_seconds": 0.5,
        "internal_dispatch_grace_seconds": 3,
    }


def stop(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the worker's whole process group: taskiq's children too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_")}
    env.update(
        JOBSERVER_DATABASE_URL=settings.effective_database_url,
        JOBSERVER_REDIS_URL=str(settings.redis_url),
        JOBSERVER_INTERNAL_EXTENSIONS=EXTENSIONS,
        JOBSERVER_DATA_DIR=str(tmp_path / "worker-data"),
        JOBSERVER_LOG_LEVEL="warning",
    )
    log = (tmp_path / "worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--concurrency", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop(process, signal.SIGTERM)
        log.close()


async def test_worker_process_completes_50_internal_tasks(
    client: httpx.AsyncClient,
    user_headers: dict[str, str],
    core: Core,
    worker: subprocess.Popen[bytes],
) -> None:
    redis = Redis.from_url(str(core.settings.redis_url))
    async with redis.pubsub() as socketio_fanout:
        await socketio_fanout.subscribe(SOCKETIO_CHANNEL)
        ids = [
            await submit(client, user_headers, "@internal:modifiers:Echo", {"message": str(i)})
            for i in range(50)
        ]
        finished = await asyncio.gather(*(wait_terminal(client, user_headers, i) for i in ids))
        assert [body["status"] for body in finished] == ["completed"] * 50
        assert all(body["started_at"] is not None for body in finished)
        # The worker's events reach every replica's Socket.IO server through Redis.
        seen = b""
        while (message := await socketio_fanout.get_message(timeout=1)) is not None:
            seen += message["data"] if isinstance(message["data"], bytes) else b""
    await redis.aclose()
    assert b"task_status_event" in seen
    assert ids[-1].encode() in seen


async def test_killed_worker_leaves_its_task_to_the_stuck_task_rule(
    client: httpx.AsyncClient,
    user_headers: dict[str, str],
    core: Core,
    worker: subprocess.Popen[bytes],
) -> None:
    warm_up = await submit(client, user_headers, "@internal:modifiers:Echo", {})
    assert (await wait_terminal(client, user_headers, warm_up))["status"] == "completed"
    task_id = await submit(client, user_headers, "@internal:modifiers:Sleep", {"seconds": 60})
    for _ in range(300):
        response = await client.get(f"/v1/joblib/tasks/{task_id}", headers=user_headers)
        if response.json()["status"] == "running":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the worker never started the task")
    stop(worker, signal.SIGKILL)
    async with core.sessionmaker() as session:
        assert await take_lost_dispatches(session, timedelta(0)) == []  # it did start
        await fail_stuck_internal_tasks(session, timedelta(hours=1))
        await session.commit()
        task = (
            await session.execute(select(Task).where(Task.id == uuid.UUID(task_id)))
        ).scalar_one()
        assert task.status == "running"
        await fail_stuck_internal_tasks(session, timedelta(0))
        await session.commit()
        task = (
            await session.execute(
                select(Task)
                .where(Task.id == uuid.UUID(task_id))
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
    assert (task.status, task.error) == ("failed", INTERNAL_TIMEOUT)
