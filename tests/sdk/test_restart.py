"""A worker rides out a restart of the server process (PostgreSQL: the production shape)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobserver_sdk import JobService

from tests.live import LiveServer, free_port, server_env, start_server
from tests.sdk.conftest import FAST_LOOPS
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, Count

pytestmark = pytest.mark.slow
TASKS = 60


@pytest.fixture
def backend() -> str:
    """One backend is enough here: the restart exercises the worker, not the database."""
    return "postgresql"


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    env = server_env(database_url, tmp_path, **FAST_LOOPS)
    server = start_server(env, tmp_path / "server.log", free_port())
    try:
        yield server
    finally:
        server.kill()


async def test_worker_rides_out_a_server_restart_and_runs_every_task_once(
    live: LiveServer,
) -> None:
    token = live.token()
    room = f"restart{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex
    port = int(live.url.rsplit(":", 1)[1])
    async with (
        JobService(live.url, token, room=room) as service,
        workers(live.url, token, room, [Count], count=2, concurrency=4),
    ):
        tasks = await service.submit_many([Count(tag=tag, n=n, seconds=0.1) for n in range(TASKS)])
        async with asyncio.timeout(20):
            while True:
                if sum(EXECUTIONS[f"{tag}:{n}"] for n in range(TASKS)) >= 10:
                    break
                await asyncio.sleep(0.02)
        await asyncio.to_thread(live.kill, signal.SIGKILL)  # no graceful drain of requests
        await asyncio.sleep(1)  # workers see the server gone: claims and reports fail
        restarted = await asyncio.to_thread(start_server, live.env, live.log_path, port)
        live.process = restarted.process
        results = await asyncio.gather(*(task.result(timeout=60) for task in tasks))
    assert results == list(range(TASKS))
    assert [EXECUTIONS[f"{tag}:{n}"] for n in range(TASKS)] == [1] * TASKS
