"""A job's settings (timeout_seconds) belong to its first registrant (jobs.registered_by)
and to admins; anyone else's re-registration may not change them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import update

from app.db.models import Job
from app.state import Core
from tests.contract.conftest import JOBLIB, claimed, patch, submitted

Headers = dict[str, str]
JOB = "r1:modifiers:Echo"


async def register(
    client: httpx.AsyncClient, headers: Headers, seconds: float | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"category": "modifiers", "name": "Echo", "schema_": {}}
    if seconds is not None:
        body["timeout_seconds"] = seconds
    return await client.put(f"{JOBLIB}/rooms/r1/jobs", json=body, headers=headers)


async def timeout_of(core: Core) -> float | None:
    async with core.sessionmaker() as session:
        job = (await session.execute(Job.__table__.select().where(Job.full_name == JOB))).one()
        return job.timeout_seconds  # type: ignore[no-any-return]


async def test_another_user_cannot_shorten_the_timeout_of_a_running_task(
    client: httpx.AsyncClient, core: Core, user_headers: Headers, other_headers: Headers
) -> None:
    """The finding: B re-registered A's job with timeout 0.5 s and A's running task was
    failed "timed out after 0.5 s"."""
    first = await register(client, user_headers, seconds=3600)
    assert first.status_code == 201, first.text
    worker_id = first.json()["worker_id"]
    task_id = await submitted(client, user_headers, job=JOB)
    assert await claimed(client, user_headers, worker_id) == task_id
    assert (await patch(client, user_headers, task_id, "running")).status_code == 200

    hijack = await register(client, other_headers, seconds=0.5)
    assert hijack.status_code == 403, hijack.text
    assert hijack.headers["content-type"].startswith("application/problem+json")

    await asyncio.sleep(0.6)
    await core.tasks.fail_timed_out(0)
    task = (await client.get(f"{JOBLIB}/tasks/{task_id}", headers=user_headers)).json()
    assert task["status"] == "running"
    assert await timeout_of(core) == 3600


async def test_re_registration_with_the_same_settings_passes_for_anyone(
    client: httpx.AsyncClient, core: Core, user_headers: Headers, other_headers: Headers
) -> None:
    """The joblib client re-registers on reconnect with the values it had: never refused."""
    assert (await register(client, user_headers, seconds=60)).status_code == 201
    assert (await register(client, other_headers, seconds=60)).status_code == 200
    assert (await register(client, other_headers)).status_code == 200
    assert (await register(client, user_headers, seconds=30)).status_code == 200
    assert await timeout_of(core) == 30


async def test_an_admin_may_change_any_jobs_timeout(
    client: httpx.AsyncClient, core: Core, user_headers: Headers, admin_headers: Headers
) -> None:
    assert (await register(client, user_headers, seconds=60)).status_code == 201
    assert (await register(client, admin_headers, seconds=10)).status_code == 200
    assert await timeout_of(core) == 10


async def test_a_job_without_registrant_is_claimed_by_its_next_registrant(
    client: httpx.AsyncClient, core: Core, user_headers: Headers, other_headers: Headers
) -> None:
    """Rows from before migration 0004 have no registrant: the next one claims the job."""
    assert (await register(client, user_headers, seconds=60)).status_code == 201
    async with core.sessionmaker() as session:
        await session.execute(update(Job).values(registered_by=None))
        await session.commit()
    assert (await register(client, other_headers, seconds=20)).status_code == 200
    assert (await register(client, user_headers, seconds=5)).status_code == 403
    assert await timeout_of(core) == 20
