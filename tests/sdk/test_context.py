"""The task context inside `handle()` (`self.context`): the task's ids, progress reports
(stored on the task, pushed to its room), and the traceback of a failed attempt kept in
the attempt history (both backends)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from jobserver_sdk import Job, JobService, current_context, payload_of

from tests.realtime.conftest import recorder
from tests.sdk.conftest import Server
from tests.sdk.helpers import workers

pytestmark = pytest.mark.slow
SEEN: dict[str, dict[str, Any]] = {}


class Introspect(Job):
    max_attempts = 2
    tag: str

    async def handle(self) -> None:
        ctx = self.context
        SEEN[self.tag] = {
            "task_id": ctx.task_id,
            "attempt": ctx.attempt,
            "max_attempts": ctx.max_attempts,
            "room": ctx.room,
            "job_name": ctx.job_name,
            "worker_id": ctx.worker_id,
            "same": current_context() is ctx,
        }


class Steps(Job):
    steps: int = 3

    async def handle(self) -> str:
        for step in range(1, self.steps + 1):
            await self.context.progress(step / self.steps, f"step {step}")
            await asyncio.sleep(0.05)
        return "done"


class BlockingSteps(Job):
    def handle(self) -> str:
        self.context.progress_sync(0.5, "half, from a thread")
        time.sleep(0.1)
        return "done"


class FailsFirst(Job):
    max_attempts = 2

    async def handle(self) -> str:
        if self.context.attempt == 1:
            raise ValueError("first attempt fails")
        return "second attempt"


class Named(Job):
    context: str = "a field named context"

    async def handle(self) -> list[str]:
        return [self.context, current_context().job_name]


def service_for(server: Server, room: str) -> JobService:
    return JobService(server.url, server.token, room=room)


async def read(service: JobService, task_id: str, path: str = "") -> Any:
    return await service.client.request("GET", f"/v1/joblib/tasks/{task_id}{path}")


async def settled(service: JobService, task_id: str, progress: float) -> dict[str, Any]:
    """The task once its stored progress is `progress` (a deferred report lands <= 1 s)."""
    async with asyncio.timeout(10):
        while True:
            body: dict[str, Any] = await read(service, task_id)
            if body["progress"] == progress:
                return body
            await asyncio.sleep(0.1)


def test_the_context_is_neither_a_field_nor_in_the_payload() -> None:
    job = Introspect(tag="t")
    assert "context" not in Introspect.model_json_schema()["properties"]
    assert payload_of(job) == {"tag": "t"}
    with pytest.raises(RuntimeError, match="inside handle"):
        _ = job.context


async def test_a_handler_sees_its_task_attempt_room_and_worker(server: Server, room: str) -> None:
    tag = uuid.uuid4().hex
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Introspect]) as [worker],
    ):
        task = await service.submit(Introspect(tag=tag))
        await task.result(timeout=20)
    assert SEEN[tag] == {
        "task_id": task.id,
        "attempt": 1,
        "max_attempts": 2,
        "room": room,
        "job_name": Introspect.full_name(room),
        "worker_id": worker.worker_id,
        "same": True,
    }


async def test_progress_is_stored_and_pushed_to_a_room_listener(server: Server, room: str) -> None:
    listener = await recorder(server.url, server.token, room)
    try:
        async with (
            service_for(server, room) as service,
            workers(server.url, server.token, room, [Steps]),
        ):
            task = await service.submit(Steps())
            assert await task.result(timeout=20) == "done"
            body = await settled(service, task.id, 1.0)
            events = await listener.wait("task_progress")
    finally:
        await listener.sio.disconnect()
    assert (body["status"], body["progress_message"]) == ("completed", "step 3")
    first = events[0]
    assert isinstance(first, dict)
    assert (first["id"], first["room_id"]) == (str(task.id), room)


async def test_a_blocking_handler_reports_progress_from_its_thread(
    server: Server, room: str
) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [BlockingSteps]),
    ):
        task = await service.submit(BlockingSteps())
        assert await task.result(timeout=20) == "done"
        body = await settled(service, task.id, 0.5)
    assert body["progress_message"] == "half, from a thread"


async def test_a_failed_attempt_keeps_its_traceback_and_the_retry_clears_the_error(
    server: Server, room: str
) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [FailsFirst]),
    ):
        task = await service.submit(FailsFirst())
        assert await task.result(timeout=20) == "second attempt"
        first, second = (await read(service, task.id, "/attempts"))["items"]
        body = await read(service, task.id)
    assert (first["outcome"], first["error"]) == ("failed", "ValueError: first attempt fails")
    assert first["traceback"].startswith("Traceback (most recent call last)")
    assert "ValueError: first attempt fails" in first["traceback"]
    assert (second["outcome"], second["error"]) == ("completed", None)
    assert (body["status"], body["error"]) == ("completed", None)


async def test_a_job_may_declare_a_field_named_context(server: Server, room: str) -> None:
    assert "context" in Named.model_json_schema()["properties"]
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Named]),
    ):
        task = await service.submit(Named(context="mine"))
        result = await task.result(timeout=20)
    assert result == ["mine", Named.full_name(room)]
