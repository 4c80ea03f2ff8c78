"""REST.md §2 Tasks, claim: which tasks a worker gets, ownership, and exactly-once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select

from app.db.models import Task, Worker
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    assert_problem,
    claim,
    registered_worker,
    submitted,
)
from tests.factories import make_job, make_task


async def test_claim_takes_the_oldest_pending_task_across_rooms(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    worker_id = await registered_worker(client, admin_headers, room="@global")
    job = "@global:modifiers:Echo"
    first = await submitted(client, admin_headers, job=job, room="b")
    second = await submitted(client, admin_headers, job=job, room="a")
    got = [(await claim(client, admin_headers, worker_id)).json()["task"]["id"] for _ in range(2)]
    assert got == [first, second]


async def test_claimed_task_is_claimed_by_the_worker_without_started_at(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    worker_id = await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    emitted.clear()
    response = await claim(client, user_headers, worker_id)
    assert response.status_code == 200
    task = response.json()["task"]
    assert task["id"] == task_id
    assert task["status"] == "claimed"
    assert task["worker_id"] == worker_id
    assert task["started_at"] is None
    assert task["queue_position"] is None
    assert task["job_name"] == "r1:modifiers:Echo"
    assert [(e, d["status"], d["worker_id"], r) for e, d, r in emitted.emitted] == [
        ("task_status_event", "claimed", worker_id, "room:r1")
    ]


async def test_claim_with_nothing_pending_is_task_null_without_events(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    worker_id = await registered_worker(client, user_headers)
    emitted.clear()
    response = await claim(client, user_headers, worker_id)
    assert response.status_code == 200
    assert response.json() == {"task": None}
    assert emitted.emitted == []


async def test_claim_only_takes_tasks_of_jobs_linked_to_this_worker(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers, name="A")
    other_worker = await registered_worker(client, user_headers, name="B")
    await submitted(client, user_headers, job="r1:modifiers:A")
    assert (await claim(client, user_headers, other_worker)).json() == {"task": None}


async def test_claim_by_a_worker_without_links_is_task_null(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    lone = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    assert (await claim(client, user_headers, lone)).json() == {"task": None}


async def test_claim_unknown_worker_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = uuid.uuid4()
    response = await claim(client, user_headers, str(worker_id))
    assert_problem(response, 404, "worker-not-found", f"Worker {worker_id} not found")


async def test_claim_with_another_users_worker_is_403_even_for_superuser(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    response = await claim(client, admin_headers, worker_id)
    assert_problem(response, 403, "forbidden", "Worker belongs to a different user")


async def test_claim_without_worker_id_is_422(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.post(f"{JOBLIB}/tasks/claim", json={}, headers=user_headers)
    assert response.status_code == 422


async def test_claim_never_hands_out_internal_tasks(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    async with core.sessionmaker() as session:
        worker = await session.get(Worker, uuid.UUID(worker_id))
        assert worker is not None
        job = await make_job(session, "@internal", name="NoExecutor", workers=(worker,))
        await make_task(session, job, room_id="r1", status="pending")
        await session.commit()
    assert (await claim(client, user_headers, worker_id)).json() == {"task": None}


async def test_claim_does_not_touch_last_heartbeat(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    before = (await client.get(f"{JOBLIB}/workers", headers=user_headers)).json()["items"][0]
    await claim(client, user_headers, worker_id)
    after = (await client.get(f"{JOBLIB}/workers", headers=user_headers)).json()["items"][0]
    assert before["last_heartbeat"] == after["last_heartbeat"]


async def test_claimed_task_is_not_claimed_again(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    assert (await claim(client, user_headers, worker_id)).json()["task"] is not None
    assert (await claim(client, user_headers, worker_id)).json() == {"task": None}


async def _pending_tasks(core: Core, job_name: str, count: int) -> None:
    async with core.sessionmaker() as session:
        from app.db.models import Job

        job = (await session.execute(select(Job).where(Job.full_name == job_name))).scalar_one()
        session.add_all(
            Task(id=uuid.uuid4(), job_id=job.id, job_name=job.full_name, room_id="r1")
            for _ in range(count)
        )
        await session.commit()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_thirty_concurrent_claims_by_one_worker_over_twenty_tasks(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await _pending_tasks(core, "r1:modifiers:Echo", 20)
    answers = await asyncio.gather(*(claim(client, user_headers, worker_id) for _ in range(30)))
    tasks = [a.json()["task"] for a in answers]
    ids = [t["id"] for t in tasks if t is not None]
    assert len(ids) == 20
    assert len(set(ids)) == 20
    assert tasks.count(None) == 10


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_ten_workers_racing_for_one_task_have_one_winner(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    workers = [await registered_worker(client, user_headers) for _ in range(10)]
    await _pending_tasks(core, "r1:modifiers:Echo", 1)
    answers = await asyncio.gather(*(claim(client, user_headers, w) for w in workers))
    winners = [a.json()["task"] for a in answers if a.json()["task"] is not None]
    assert len(winners) == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_twenty_workers_claim_two_thousand_tasks_each_exactly_once(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    workers = [await registered_worker(client, user_headers) for _ in range(20)]
    await _pending_tasks(core, "r1:modifiers:Echo", 2000)
    claimed: dict[str, list[str]] = {w: [] for w in workers}

    async def drain(worker_id: str) -> None:
        while True:
            task = (await claim(client, user_headers, worker_id)).json()["task"]
            if task is None:
                return
            claimed[worker_id].append(task["id"])

    await asyncio.gather(*(drain(w) for w in workers))
    all_ids = [t for ids in claimed.values() for t in ids]
    assert len(all_ids) == 2000
    assert len(set(all_ids)) == 2000
    async with core.sessionmaker() as session:
        pending = await session.scalar(select(Task.id).where(Task.status == "pending").limit(1))
        assert pending is None
