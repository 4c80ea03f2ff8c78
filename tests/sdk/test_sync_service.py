"""`SyncJobService` from plain synchronous code (a script, Flask, Django): submit, bulk,
results, failures, cancel and reads, with a worker running in a thread (both backends)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence

import pytest
from jobserver_sdk import Job, JobCancelled, JobFailed, ResultTimeout, SyncJobService, Worker

from tests.sdk.conftest import Server
from tests.sdk.jobs import Count, Flaky, SayHello

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def worker_thread(server: Server, room: str, jobs: Sequence[type[Job]]) -> Iterator[Worker]:
    """A worker on an event loop of its own thread, as a sync program would run one."""
    worker = Worker(server.url, server.token, jobs, room, handle_signals=False, grace_seconds=5)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(worker.run(),))
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(worker.ready.wait(), 20), loop).result()
        yield worker
    finally:
        loop.call_soon_threadsafe(worker.stop)
        thread.join(timeout=30)
        loop.close()


def test_submit_and_result_block_without_an_event_loop(server: Server, room: str) -> None:
    with (
        SyncJobService(server.url, server.token, room=room) as service,
        worker_thread(server, room, [SayHello]),
    ):
        task = service.submit(SayHello(who="sync"), priority=3)
        assert task.result(timeout=20) == {"greeted": "sync"}
        assert task.status == "completed"
        assert task.info.priority == 3


def test_submit_many_returns_a_task_per_job_in_order(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    with (
        SyncJobService(server.url, server.token, room=room) as service,
        worker_thread(server, room, [Count]),
    ):
        tasks = service.submit_many([Count(tag=tag, n=n) for n in range(20)])
        assert [task.result(timeout=20) for task in tasks] == list(range(20))


def test_a_failed_task_raises_job_failed(server: Server, room: str) -> None:
    with (
        SyncJobService(server.url, server.token, room=room) as service,
        worker_thread(server, room, [Flaky]),
    ):
        task = service.submit(Flaky(tag=uuid.uuid4().hex), max_attempts=1)
        with pytest.raises(JobFailed) as failed:
            task.result(timeout=20)
    assert failed.value.error is not None
    assert failed.value.error.startswith("ValueError: boom")


def test_cancel_refresh_and_a_handle_by_id(server: Server, room: str) -> None:
    with SyncJobService(server.url, server.token, room=room) as service:
        task = service.submit(SayHello(who="later"), delay=60)
        with pytest.raises(ResultTimeout):
            task.result(timeout=1)
        same = service.task(task.id)
        assert same.refresh().status == "pending"
        assert task.cancel().status == "cancelled"
        with pytest.raises(JobCancelled):
            same.result(timeout=5)


def test_a_closed_service_refuses_calls(server: Server, room: str) -> None:
    service = SyncJobService(server.url, server.token, room=room)
    service.close()
    with pytest.raises(RuntimeError, match="closed"):
        service.submit(SayHello())
