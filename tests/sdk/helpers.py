"""Running in-process workers for a test, and waiting for a task's status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from jobserver_sdk import ApiError, Job, JobService, Task, Worker

STATUS_TIMEOUT = 20.0


@contextlib.asynccontextmanager
async def workers(
    url: str,
    token: str,
    room: str,
    jobs: Sequence[type[Job]],
    count: int = 1,
    concurrency: int = 8,
    heartbeat_seconds: float = 15.0,
) -> AsyncIterator[list[Worker]]:
    """`count` workers running in this event loop; stopped (gracefully) on exit."""
    started = [
        Worker(
            url,
            token,
            jobs,
            room,
            concurrency=concurrency,
            handle_signals=False,
            grace_seconds=5,
            heartbeat_seconds=heartbeat_seconds,
        )
        for _ in range(count)
    ]
    runs = [asyncio.create_task(w.run()) for w in started]
    try:
        async with asyncio.timeout(STATUS_TIMEOUT):
            await asyncio.gather(*(w.ready.wait() for w in started))
        yield started
    finally:
        for w in started:
            w.stop()
        await asyncio.gather(*runs)


async def wait_for_status(task: Task, status: str, within: float = STATUS_TIMEOUT) -> None:
    async with asyncio.timeout(within):
        while True:
            if (await task.refresh()).status == status:
                return
            await asyncio.sleep(0.05)


async def wait_for_job(service: JobService, job: type[Job], within: float = STATUS_TIMEOUT) -> None:
    """Until a worker (maybe another process) has registered `job` in the service's room."""
    path = f"/v1/joblib/rooms/{service.room}/jobs/{job.full_name(service.job_room)}"
    async with asyncio.timeout(within):
        while True:
            try:
                await service.client.request("GET", path)
                return
            except ApiError:
                await asyncio.sleep(0.1)
