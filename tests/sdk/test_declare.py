"""The SDK and declared jobs against a live server: a client submits before any worker
runs (the class is declared on first use), `declare()` sets defaults and limits, a class
whose schema differs from the server's is a clear error, and a paused job's tasks run once
it is resumed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from jobserver_sdk import DeclarationConflict, Job, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import wait_for_status, workers
from tests.sdk.jobs import EXECUTIONS, Count, SayHello

pytestmark = pytest.mark.slow


class CountChanged(Job):
    """Count under the same name with another payload, hence another schema."""

    job_name = "Count"
    label: str

    async def handle(self) -> None:
        return None


def service_for(server: Server, room: str) -> JobService:
    return JobService(server.url, server.token, room=room)


async def test_a_client_submits_before_any_worker_runs_and_a_later_worker_runs_the_task(
    server: Server, room: str
) -> None:
    who = f"early-{uuid.uuid4().hex[:6]}"
    async with service_for(server, room) as service:
        task = await service.submit(SayHello(who=who))
        many = await service.submit_many([SayHello(who=f"{who}-{n}") for n in range(3)])
        await asyncio.sleep(0.5)
        assert (await task.refresh()).status == "pending"
        async with workers(server.url, server.token, room, [SayHello]):
            assert await task.result(timeout=20) == {"greeted": who}
            assert [await t.result(timeout=20) for t in many] == [
                {"greeted": f"{who}-{n}"} for n in range(3)
            ]
    assert EXECUTIONS[who] == 1


async def test_declare_sets_the_jobs_defaults_and_limits(server: Server, room: str) -> None:
    async with service_for(server, room) as service:
        job = await service.declare(Count, max_attempts=2, max_running=3, max_running_per_key=1)
    assert job["declared"] is True
    assert (job["max_attempts"], job["max_running"], job["max_running_per_key"]) == (2, 3, 1)


async def test_a_class_whose_schema_differs_from_the_servers_is_a_declaration_conflict(
    server: Server, room: str
) -> None:
    async with service_for(server, room) as service:
        await service.declare(Count)
        with pytest.raises(DeclarationConflict, match="CountChanged differs"):
            await service.submit(CountChanged(label="x"))


async def test_a_paused_jobs_task_runs_on_the_waiting_worker_once_resumed(
    server: Server, room: str
) -> None:
    who = f"paused-{uuid.uuid4().hex[:6]}"
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [SayHello]),
    ):
        assert (await service.pause(SayHello))["paused"] is True
        task = await service.submit(SayHello(who=who))
        await asyncio.sleep(1.0)
        assert (await task.refresh()).status == "pending"
        assert (await service.resume(SayHello))["paused"] is False
        await wait_for_status(task, "completed")
    assert EXECUTIONS[who] == 1


async def test_a_schedule_of_a_job_no_worker_serves_yet_is_accepted(
    server: Server, room: str
) -> None:
    async with service_for(server, room) as service:
        schedule = await service.schedule(SayHello(who="later"), every=3600)
        await service.unschedule(schedule.id)
