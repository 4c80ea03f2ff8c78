"""The SDK against a live server: submit, delay, results, retries, timeouts, cancel,
validation and a worker's graceful shutdown (both backends)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from jobserver_sdk import JobCancelled, JobFailed, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import wait_for_job, wait_for_status, workers
from tests.sdk.jobs import (
    EXECUTIONS,
    STOPPED,
    Count,
    Flaky,
    Huge,
    SayHello,
    Sleep,
    Strict,
    SyncSleep,
    TimesOut,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def service_for(server: Server, room: str) -> JobService:
    return JobService(server.url, server.token, room=room)


async def test_delayed_task_is_not_claimable_before_its_delay_then_runs_once_with_its_result(
    server: Server, room: str, capsys: pytest.CaptureFixture[str]
) -> None:
    who = f"Ada-{uuid.uuid4().hex[:6]}"
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [SayHello]),
    ):
        task = await service.submit(SayHello(who=who), delay=timedelta(seconds=1.5), priority=5)
        await asyncio.sleep(1.0)
        assert (await task.refresh()).status == "pending"
        assert await task.result(timeout=20) == {"greeted": who}
    assert task.info.started_at is not None
    assert task.info.run_at is not None
    assert task.info.started_at >= task.info.run_at
    assert task.info.priority == 5
    assert EXECUTIONS[who] == 1
    assert f"say hello {who}" in capsys.readouterr().out


async def test_200_tasks_on_4_workers_run_exactly_once_each(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Count], count=4, concurrency=8),
    ):
        tasks = await service.submit_many([Count(tag=tag, n=n) for n in range(200)])
        results = await asyncio.gather(*(task.result(timeout=60) for task in tasks))
    assert results == list(range(200))
    assert [EXECUTIONS[f"{tag}:{n}"] for n in range(200)] == [1] * 200


async def test_submit_many_over_the_servers_body_limit_is_sent_in_smaller_calls(
    server: Server, room: str
) -> None:
    """1,000 payloads of 3 KB pass the server's 2 MiB body limit (413): the SDK sends the
    call again in halves, and every task comes back, in order."""
    names = [f"{n:04d}-" + "x" * 3000 for n in range(1000)]
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [SayHello]),
    ):
        tasks = await service.submit_many([SayHello(who=name) for name in names])
    assert [task.info.payload["who"] for task in tasks] == names
    assert len({task.id for task in tasks}) == len(names)


async def test_failing_job_retries_up_to_max_attempts_then_job_failed_carries_the_error(
    server: Server, room: str
) -> None:
    tag = uuid.uuid4().hex
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Flaky]),
    ):
        task = await service.submit(Flaky(tag=tag))
        with pytest.raises(JobFailed) as failed:
            await task.result(timeout=30)
    assert failed.value.error == f"ValueError: boom {tag}"
    assert task.info.attempt == 3
    assert EXECUTIONS[tag] == 3


async def test_handle_running_past_timeout_fails_the_task(server: Server, room: str) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [TimesOut]),
    ):
        task = await service.submit(TimesOut())
        with pytest.raises(JobFailed) as failed:
            await task.result(timeout=20)
    assert failed.value.error == "timed out after 0.5 s"


async def test_cancel_pending_task_never_runs_it(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Count]),
    ):
        task = await service.submit(Count(tag=tag, n=1), delay=30)
        assert (await task.cancel()).status == "cancelled"
        with pytest.raises(JobCancelled) as cancelled:
            await task.result(timeout=5)
    assert EXECUTIONS[f"{tag}:1"] == 0
    # Told apart from a failure: its own class, and a message that says "cancelled".
    assert not isinstance(cancelled.value, JobFailed)
    assert str(cancelled.value) == f"task {task.id} cancelled"


async def test_cancel_running_task_stops_its_handle(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Sleep]),
    ):
        task = await service.submit(Sleep(tag=tag, seconds=60))
        await wait_for_status(task, "running")
        await task.cancel()
        with pytest.raises(JobCancelled):
            await task.result(timeout=5)
        async with asyncio.timeout(10):
            while True:
                if tag in STOPPED:
                    break
                await asyncio.sleep(0.05)
        assert (await task.refresh()).status == "cancelled"


async def test_payload_failing_validation_fails_the_task_with_the_error(
    server: Server, room: str
) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Strict]),
    ):
        path = f"/v1/joblib/rooms/{room}/tasks/{Strict.full_name(room)}"
        body = await service.client.request("POST", path, json={"payload": {"count": "many"}})
        task = service.task(body["id"])
        with pytest.raises(JobFailed) as failed:
            await task.result(timeout=20)
    assert failed.value.error is not None
    assert failed.value.error.startswith("invalid payload: 1 validation error for Strict")
    assert "count" in failed.value.error


async def test_result_over_the_servers_limit_fails_the_task_saying_so(
    server: Server, room: str
) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Huge, SayHello]),
    ):
        huge = await service.submit(Huge())
        small = await service.submit(SayHello(who="small"))
        with pytest.raises(JobFailed) as failed:
            await huge.result(timeout=20)
        assert await small.result(timeout=20) == {"greeted": "small"}
    assert failed.value.error is not None
    assert failed.value.error.startswith("result refused: Result is 1048579 bytes")


async def test_sync_handle_runs_in_a_thread_of_the_workers_pool(server: Server, room: str) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [SyncSleep], concurrency=4),
    ):
        tasks = await service.submit_many([SyncSleep() for _ in range(4)])
        names = await asyncio.gather(*(task.result(timeout=20) for task in tasks))
    assert all(name.startswith("jobserver-handle") for name in names), names


async def test_sigterm_lets_running_tasks_finish_releases_the_rest_and_deletes_the_worker(
    server: Server, room: str
) -> None:
    """A deploy loses no work: with max_attempts=1, the task the stopping worker could not
    finish goes back to the queue (no attempt spent) and another worker completes it."""
    async with service_for(server, room) as service:
        process = await start_worker_process(server, room, "tests.sdk.jobs:Sleep", grace=1)
        try:
            await wait_for_job(service, Sleep)
            short = await service.submit(Sleep(seconds=0.5), max_attempts=1)
            long = await service.submit(Sleep(seconds=3), max_attempts=1)
            await wait_for_status(short, "running")
            await wait_for_status(long, "running")
            stopped_worker = (await long.refresh()).worker_id
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert await short.result(timeout=5) == "slept"
        released = await long.refresh()
        assert (released.status, released.worker_id, released.error) == ("pending", None, None)
        assert (released.attempt, released.max_attempts) == (2, 2)
        listed = await service.client.request("GET", "/v1/joblib/workers?limit=500")
        assert str(stopped_worker) not in {w["id"] for w in listed["items"]}
        async with workers(server.url, server.token, room, [Sleep]) as [other]:
            assert await long.result(timeout=20) == "slept"
        assert long.info.worker_id == other.worker_id


async def start_worker_process(
    server: Server, room: str, job: str, grace: float
) -> asyncio.subprocess.Process:
    """`python -m jobserver_sdk worker` as deployed, serving `job` in `room`."""
    command = [sys.executable, "-m", "jobserver_sdk", "worker", job, "--room", room]
    command += ["--url", server.url, "--token", server.token, "--grace", str(grace)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
    )
