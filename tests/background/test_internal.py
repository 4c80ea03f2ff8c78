"""@internal jobs in embedded mode: taskiq's in-memory broker inside the server (§2)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.background.sweeper import redispatch_lost
from app.db.models import Job, Task
from app.internal.dispatch import Dispatcher
from app.internal.examples import Echo
from app.internal.registration import sync_jobs
from app.services.tasks import submit as submits
from app.services.tasks.submit import Submission
from app.services.users import actor_of
from app.state import Core
from tests.background.extensions import Counter
from tests.factories import make_user

ECHO = "@internal:modifiers:Echo"
COUNTER = "@internal:analysis:Counter"
BOOM = "@internal:analysis:Boom"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "internal_extensions": "app.internal.examples:Echo,app.internal.examples:Sleep,"
        "tests.background.extensions:Counter,tests.background.extensions:Boom"
    }


async def submit(client: httpx.AsyncClient, headers: dict[str, str], job: str, payload: Any) -> str:
    response = await client.post(
        f"/v1/joblib/rooms/r1/tasks/{job}", json={"payload": payload}, headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def wait_terminal(client: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> Any:
    for _ in range(20):
        response = await client.get(
            f"/v1/joblib/tasks/{task_id}", headers={**headers, "Prefer": "wait=5"}
        )
        body = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
    raise AssertionError(f"task {task_id} never finished: {body}")


async def test_internal_echo_task_completes_end_to_end(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    task_id = await submit(client, user_headers, ECHO, {"message": "hi"})
    body = await wait_terminal(client, user_headers, task_id)
    assert body["status"] == "completed", body
    assert body["started_at"] is not None
    assert body["completed_at"] is not None
    assert body["worker_id"] is None


async def test_internal_task_result_is_what_the_extension_returned(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    task_id = await submit(client, user_headers, ECHO, {"message": "hi"})
    body = await wait_terminal(client, user_headers, task_id)
    assert body["result"] == {"message": "hi"}


async def test_internal_jobs_are_listed_from_every_room(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.get("/v1/joblib/rooms/any-room/jobs", headers=user_headers)
    names = {job["full_name"] for job in response.json()["items"]}
    assert {ECHO, "@internal:modifiers:Sleep", COUNTER, BOOM} <= names


async def test_startup_reactivates_internal_job_and_replaces_its_schema(core: Core) -> None:
    async with core.sessionmaker() as session:
        await session.execute(
            update(Job).where(Job.full_name == ECHO).values(deleted=True, schema_={"old": True})
        )
        await sync_jobs(session, [Echo])
        await session.commit()
        job = (await session.execute(select(Job).where(Job.full_name == ECHO))).scalar_one()
    assert not job.deleted
    assert job.schema_ == Echo.model_json_schema()


async def test_extension_error_fails_the_task_with_its_message(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    task_id = await submit(client, user_headers, BOOM, {})
    body = await wait_terminal(client, user_headers, task_id)
    assert (body["status"], body["error"]) == ("failed", "boom")
    assert body["started_at"] is not None


async def test_duplicate_message_runs_the_extension_once(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    task_id = await submit(client, user_headers, COUNTER, {})
    assert core.publisher.dispatcher is not None
    handle = core.publisher.dispatcher.handles[COUNTER]  # type: ignore[attr-defined]
    for _ in range(2):
        await handle.kiq(task_id=task_id, room_id="r1", payload={})
    body = await wait_terminal(client, user_headers, task_id)
    await handle.broker.wait_all()
    assert body["status"] == "completed"
    assert Counter.runs[uuid.UUID(task_id)] == 1


async def submitted_without_dispatch(core: Core) -> uuid.UUID:
    """A committed @internal task whose broker message was never sent (stored, events
    not published)."""
    async with core.sessionmaker() as session:
        actor = actor_of(await make_user(session))
        await session.commit()
    done = await submits.submit(core.store, actor, "r1", ECHO, [Submission({})], core.internal_jobs)
    return uuid.UUID(done.views[0].task.id)


async def status_of(core: Core, task_id: uuid.UUID) -> Task:
    async with core.sessionmaker() as session:
        return (await session.execute(select(Task).where(Task.id == task_id))).scalar_one()


async def test_lost_dispatch_is_resent_by_the_repair_pass(core: Core) -> None:
    task_id = await submitted_without_dispatch(core)
    settings = core.settings.model_copy(update={"internal_dispatch_grace_seconds": 0})
    await asyncio.sleep(0.01)
    await redispatch_lost(settings, core.tasks, core.publisher)
    for _ in range(100):
        if (await status_of(core, task_id)).status == "completed":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the re-sent task never completed")


async def test_dispatch_within_the_grace_period_is_not_resent(core: Core) -> None:
    task_id = await submitted_without_dispatch(core)
    await redispatch_lost(core.settings, core.tasks, core.publisher)
    await asyncio.sleep(0.2)
    assert (await status_of(core, task_id)).status == "claimed"


async def test_failed_enqueue_leaves_the_task_claimed_for_the_repair_pass(core: Core) -> None:
    task_id = await submitted_without_dispatch(core)
    unsent = await Dispatcher(core.sessionmaker, {}).dispatch([str(task_id)])
    assert unsent == [str(task_id)]
    task = await status_of(core, task_id)
    assert (task.status, task.error, task.completed_at) == ("claimed", None, None)
