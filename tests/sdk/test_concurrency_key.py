"""`JobService.submit(..., concurrency_key=...)` and `submit_many(..., concurrency_key=...)`
send the key the job's `max_running_per_key` counts by; the task carries it."""

from __future__ import annotations

import uuid

from jobserver_sdk import JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import Count


async def test_a_submitted_task_carries_its_concurrency_key(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [Count]),
    ):
        one = await service.submit(Count(tag=tag, n=1), concurrency_key="tenant-a")
        many = await service.submit_many(
            [Count(tag=tag, n=n) for n in (2, 3)], concurrency_key="tenant-b"
        )
        plain = await service.submit(Count(tag=tag, n=4))
        for task in (one, *many, plain):
            await task.result(timeout=30)
    keys = [t.info.concurrency_key for t in (one, *many, plain)]
    assert keys == ["tenant-a", "tenant-b", "tenant-b", None]
