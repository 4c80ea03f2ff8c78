"""Pause and resume a job (issue 19, item 3): claims skip a paused job, submits are still
accepted, a resume wakes the workers already waiting; registrant or admin only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.db.models import Job
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    assert_problem,
    claim,
    get_task,
    patch,
    registered_worker,
    submit,
    submitted,
)

JOB = "r1:modifiers:Echo"
WAIT_SECONDS = 20


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"long_poll_max_wait_seconds": WAIT_SECONDS}


class Waker(Recorder):
    """Records emits, and stands for a worker's socket: `woke` is set by a wake-up."""

    def __init__(self) -> None:
        super().__init__()
        self.woke = asyncio.Event()

    async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None:
        await super().emit(event, data, room=room)
        if (event, room) == ("task_available", f"jobs:{JOB}"):
            self.woke.set()


@pytest.fixture
def emitted(core: Core) -> Waker:
    recorder = Waker()
    core.publisher.fanout.emitter = recorder
    return recorder


async def pause(
    client: httpx.AsyncClient, headers: Headers, job: str = JOB, action: str = "pause"
) -> httpx.Response:
    return await client.post(f"{JOBLIB}/jobs/{job}/{action}", headers=headers)


async def resume(client: httpx.AsyncClient, headers: Headers, job: str = JOB) -> httpx.Response:
    return await pause(client, headers, job, "resume")


async def test_a_paused_job_is_not_claimed_but_still_accepts_submits(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    paused = await pause(client, user_headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert (await submit(client, user_headers)).status_code == 202
    assert (await claim(client, user_headers, worker_id)).json()["task"] is None
    resumed = await resume(client, user_headers)
    assert resumed.json()["paused"] is False
    assert (await claim(client, user_headers, worker_id)).json()["task"] is not None


async def test_resume_hands_the_task_to_a_worker_already_waiting(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Waker
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await pause(client, user_headers)
    task_id = await submitted(client, user_headers)
    emitted.woke.clear()  # the submit's own wake-up found the job paused

    async def waiting_worker() -> None:
        await emitted.woke.wait()
        task = (await claim(client, user_headers, worker_id)).json()["task"]
        assert task["id"] == task_id
        await patch(client, user_headers, task_id, "running")
        await patch(client, user_headers, task_id, "completed")

    headers = {**user_headers, "Prefer": f"wait={WAIT_SECONDS}"}
    result = asyncio.create_task(client.get(f"{JOBLIB}/tasks/{task_id}", headers=headers))
    worker = asyncio.create_task(waiting_worker())
    await asyncio.sleep(0.3)
    assert not worker.done()
    assert (await resume(client, user_headers)).status_code == 200
    async with asyncio.timeout(WAIT_SECONDS):
        await worker
        answer = await result
    assert answer.json()["status"] == "completed"


async def test_resume_without_a_due_task_wakes_nobody(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    await registered_worker(client, user_headers)
    await pause(client, user_headers)
    emitted.clear()
    await resume(client, user_headers)
    assert [name for name, _ in emitted.names()] == ["jobs_invalidate"]


async def test_pause_and_resume_are_idempotent(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    await registered_worker(client, user_headers)
    assert (await pause(client, user_headers)).json()["paused"] is True
    emitted.clear()
    again = await pause(client, user_headers)
    assert again.status_code == 200
    assert again.json()["paused"] is True
    assert emitted.names() == []
    assert (await resume(client, user_headers)).json()["paused"] is False
    assert (await resume(client, user_headers)).json()["paused"] is False


async def test_pause_and_resume_publish_jobs_invalidate(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    await registered_worker(client, user_headers)
    emitted.clear()
    await pause(client, user_headers)
    await resume(client, user_headers)
    assert emitted.names().count(("jobs_invalidate", "room:r1")) == 2


async def test_only_the_registrant_or_an_admin_pauses_a_job(
    client: httpx.AsyncClient,
    user_headers: Headers,
    other_headers: Headers,
    admin_headers: Headers,
) -> None:
    await registered_worker(client, user_headers)
    assert_problem(
        await pause(client, other_headers),
        403,
        "forbidden",
        f"Only the user who first registered job '{JOB}' (or an admin) may pause it",
    )
    assert (await pause(client, admin_headers)).status_code == 200
    assert (await resume(client, other_headers)).status_code == 403


async def test_pausing_an_unknown_or_deleted_job_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    assert_problem(
        await pause(client, user_headers), 404, "job-not-found", f"Job '{JOB}' not found"
    )
    worker_id = await registered_worker(client, user_headers)
    await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert (await resume(client, user_headers)).status_code == 404


async def test_a_global_job_is_paused_by_its_full_name(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    await registered_worker(client, admin_headers, room="@global")
    response = await pause(client, admin_headers, "@global:modifiers:Echo")
    assert response.status_code == 200, response.text
    assert response.json()["paused"] is True


async def test_internal_jobs_cannot_be_paused(
    client: httpx.AsyncClient, admin_headers: Headers, core: Core
) -> None:
    name = "@internal:modifiers:Echo"
    async with core.sessionmaker() as session:
        session.add(Job(room_id="@internal", category="modifiers", name="Echo", full_name=name))
        await session.commit()
    assert_problem(
        await pause(client, admin_headers, name),
        409,
        "internal-job-not-pausable",
        f"Internal job '{name}' cannot be paused or resumed",
    )


async def test_stats_show_a_paused_job_even_without_tasks(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers)
    await registered_worker(client, user_headers, name="Other")
    await submitted(client, user_headers, job="r1:modifiers:Other")
    await pause(client, user_headers)
    stats = (await client.get(f"{JOBLIB}/stats", headers=user_headers)).json()
    paused = {job["job_name"]: job["paused"] for job in stats["jobs"]}
    assert paused == {JOB: True, "r1:modifiers:Other": False}
    room = (await client.get(f"{JOBLIB}/rooms/r1/stats", headers=user_headers)).json()
    assert [job["paused"] for job in room["jobs"] if job["job_name"] == JOB] == [True]


async def test_the_job_list_shows_paused(client: httpx.AsyncClient, user_headers: Headers) -> None:
    await registered_worker(client, user_headers)
    await pause(client, user_headers)
    listed = (await client.get(f"{JOBLIB}/rooms/r1/jobs", headers=user_headers)).json()
    assert [job["paused"] for job in listed["items"]] == [True]
    task = await get_task(client, user_headers, await submitted(client, user_headers))
    assert task["status"] == "pending"
