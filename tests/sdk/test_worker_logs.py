"""The worker's log: one INFO line per task run (job, task id, attempt, outcome, duration)
on the `jobserver_sdk.worker` logger, and one line each for a lost connection and its
recovery however many requests failed meanwhile (both backends)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from urllib.parse import urlsplit

import pytest
from jobserver_sdk import JobFailed, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import Count, Flaky
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

LOGGER = "jobserver_sdk.worker"
CUT_SECONDS = 3.0
HEARTBEAT_SECONDS = 0.3  # many heartbeats fail during the cut


def task_lines(caplog: pytest.LogCaptureFixture, task_id: uuid.UUID) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.INFO and f"task {task_id} " in r.getMessage()
    ]


async def test_each_task_run_logs_one_line_with_job_id_attempt_outcome_and_duration(
    server: Server, room: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    tag = uuid.uuid4().hex
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [Count, Flaky]),
    ):
        done = await service.submit(Count(tag=tag, n=1))
        failing = await service.submit(Flaky(tag=tag), max_attempts=2)
        await done.result(timeout=20)
        with pytest.raises(JobFailed):
            await failing.result(timeout=20)
    assert len(task_lines(caplog, done.id)) == 1
    assert re.fullmatch(
        rf"task {done.id} {room}:modifiers:Count attempt 1/1 completed in \d+\.\d{{3}} s",
        task_lines(caplog, done.id)[0],
    )
    failed = task_lines(caplog, failing.id)
    assert len(failed) == 2  # one per attempt
    for attempt, line in enumerate(failed, start=1):
        assert re.fullmatch(
            rf"task {failing.id} {room}:modifiers:Flaky attempt {attempt}/2 "
            rf"failed: ValueError: boom {tag} in \d+\.\d{{3}} s",
            line,
        ), line


async def test_a_lost_connection_and_its_recovery_are_logged_once_each(
    server: Server, room: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    target = urlsplit(server.url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        async with (
            JobService(server.url, server.token, room=room) as service,
            workers(url, server.token, room, [Count], heartbeat_seconds=HEARTBEAT_SECONDS),
        ):
            await asyncio.to_thread(proxy.cut)
            await asyncio.sleep(CUT_SECONDS)
            await asyncio.to_thread(proxy.resume)
            # The worker is back: it runs a task submitted after the cut.
            task = await service.submit(Count(tag=uuid.uuid4().hex, n=1))
            assert await task.result(timeout=30) == 1
            async with asyncio.timeout(10):
                while True:
                    if any("is back" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    lost = [line for line in lines if line.startswith(f"lost the connection to {url}")]
    back = [line for line in lines if line.startswith(f"connection to {url} is back after")]
    assert (len(lost), len(back)) == (1, 1), lines
