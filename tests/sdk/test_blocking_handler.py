"""A handler that blocks the event loop for longer than the server waits for a heartbeat
keeps its task: heartbeats come from a thread of their own (both backends)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from jobserver_sdk import JobService

from tests.live import live_server
from tests.sdk.conftest import FAST_LOOPS, Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, BlocksLoop

pytestmark = pytest.mark.slow

WORKER_TIMEOUT_SECONDS = 2
BLOCK_SECONDS = 3 * WORKER_TIMEOUT_SECONDS
HEARTBEAT_SECONDS = 0.25


@pytest.fixture(scope="module")
def server(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that sweeps a worker silent for 2 s and cleans up a worker 1 s after its
    socket left: both far shorter than the handler's block."""
    data_dir = tmp_path_factory.mktemp("sdk-blocking")
    short = {
        "JOBSERVER_WORKER_TIMEOUT_SECONDS": str(WORKER_TIMEOUT_SECONDS),
        "JOBSERVER_DISCONNECT_GRACE_SECONDS": "1",
    }
    with live_server(module_database, data_dir, **FAST_LOOPS, **short) as live:
        yield Server(live, live.token(), module_database)


async def test_handler_blocking_the_loop_past_the_worker_timeout_completes_its_task(
    server: Server, room: str
) -> None:
    tag = uuid.uuid4().hex
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(
            server.url, server.token, room, [BlocksLoop], heartbeat_seconds=HEARTBEAT_SECONDS
        ) as [worker],
    ):
        task = await service.submit(BlocksLoop(tag=tag, seconds=BLOCK_SECONDS), max_attempts=1)
        assert await task.result(timeout=60) == "woke"
        assert worker.identity.generation == 1  # never swept, so never registered again
    assert (task.info.attempt, task.info.worker_id) == (1, worker.worker_id)
    assert EXECUTIONS[tag] == 1
