"""What a handler may look like: a plain `def` (run in a thread), a decorated `async def`,
and payload fields named like the keys the SDK and the server use around a payload
(both backends)."""

from __future__ import annotations

import pytest
from jobserver_sdk import JobFailed, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import DecoratedAsync, ReservedNames, SyncFails, SyncSleep

pytestmark = pytest.mark.slow


async def test_a_plain_def_handle_runs_in_a_thread_and_returns_its_result(
    server: Server, room: str
) -> None:
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [SyncSleep]),
    ):
        task = await service.submit(SyncSleep(seconds=0.01))
        assert (await task.result(timeout=20)).startswith("jobserver-handle")


async def test_a_plain_def_handle_that_raises_fails_its_attempt_with_the_text(
    server: Server, room: str
) -> None:
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [SyncFails]),
    ):
        task = await service.submit(SyncFails())
        with pytest.raises(JobFailed) as failed:
            await task.result(timeout=20)
    assert failed.value.error == "ValueError: sync boom"


async def test_a_sync_handle_that_returns_a_coroutine_has_it_awaited(
    server: Server, room: str
) -> None:
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [DecoratedAsync]),
    ):
        task = await service.submit(DecoratedAsync(who="Ada"))
        assert await task.result(timeout=20) == "decorated Ada"


async def test_fields_named_like_reserved_keys_round_trip_from_submit_to_handle(
    server: Server, room: str
) -> None:
    job = ReservedNames(
        payload="the payload field",
        priority=9,
        max_attempts=4,
        timeout_seconds=0.5,
        room="not the room",
        delay=30.0,
        job_name="not the job",
        status="not the status",
        id=42,
    )
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [ReservedNames]),
    ):
        task = await service.submit(job)
        assert await task.result(timeout=20) == job.model_dump()
    # The fields are the payload's; the job's own settings keep their defaults (and a
    # field `delay` of 30 s delayed nothing: the result came within 20 s).
    assert task.info.job_name == f"{room}:modifiers:ReservedNames"
    assert (task.info.priority, task.info.max_attempts) == (0, 1)


def test_a_field_named_like_a_setting_raises_no_warning() -> None:
    """tests run with warnings as errors: defining the class again would fail here."""
    from jobserver_sdk import Job

    class Mail(Job):
        payload: str
        priority: int
        job_name: str

    assert Mail.job_name == "Mail"
    assert Mail(payload="p", priority=1, job_name="x").job_name == "x"
