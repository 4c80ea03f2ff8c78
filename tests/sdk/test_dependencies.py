"""`JobService.submit(job, after=[...])` against a live server: the task waits for its
parents, runs after they completed, and is cancelled when one fails."""

from __future__ import annotations

import uuid

import pytest
from jobserver_sdk import JobCancelled, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import Count, Flaky, Sleep


async def test_a_task_submitted_after_others_starts_once_they_completed(
    server: Server, room: str
) -> None:
    tag = uuid.uuid4().hex
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [Sleep, Count], concurrency=4),
    ):
        parent = await service.submit(Sleep(tag=tag, seconds=0.5))
        child = await service.submit(Count(tag=tag, n=1), after=[parent])
        assert child.status == "waiting"
        grandchildren = await service.submit_many(
            [Count(tag=tag, n=n) for n in (2, 3)], after=[child.id]
        )
        assert [await t.result(timeout=30) for t in grandchildren] == [2, 3]
        assert await child.result(timeout=30) == 1
        await parent.refresh()
    assert parent.info.completed_at is not None
    assert child.info.started_at is not None
    assert child.info.started_at >= parent.info.completed_at
    assert child.info.completed_at is not None
    for task in grandchildren:
        assert task.info.started_at is not None
        assert task.info.started_at >= child.info.completed_at


async def test_a_task_after_a_failed_one_is_cancelled(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [Flaky, Count]),
    ):
        # Delayed, so that the child is submitted before a worker can fail the parent
        # (a parent that already failed refuses new children with 409).
        parent = await service.submit(Flaky(tag=tag), max_attempts=1, delay=1.0)
        child = await service.submit(Count(tag=tag, n=1), after=[parent])
        with pytest.raises(JobCancelled) as cancelled:
            await child.result(timeout=30)
    assert cancelled.value.error == f"parent {parent.id} failed"
    assert str(cancelled.value) == f"task {child.id} cancelled: parent {parent.id} failed"
