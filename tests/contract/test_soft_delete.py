"""REST.md §2 DELETE /workers cascade and §3 soft delete: orphan checks and reactivation."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from app.db.models import Provider, Worker
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    claimed,
    get_task,
    patch,
    register,
    registered_worker,
    submit,
    submitted,
)

JOB = "r1:modifiers:Echo"


async def _delete(client: httpx.AsyncClient, headers: Headers, worker_id: str) -> None:
    response = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=headers)
    assert response.status_code == 204, response.text


async def _get_job(client: httpx.AsyncClient, headers: Headers, job: str = JOB) -> httpx.Response:
    room = job.split(":", 1)[0]
    return await client.get(f"{JOBLIB}/rooms/{room}/jobs/{job}", headers=headers)


async def test_delete_fails_claimed_and_running_tasks_keeping_worker_id(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    for _ in range(2):
        await submitted(client, user_headers)
    first = await claimed(client, user_headers, worker_id)
    second = await claimed(client, user_headers, worker_id)
    await patch(client, user_headers, second, "running")
    await _delete(client, user_headers, worker_id)
    for task_id in (first, second):
        task = await get_task(client, user_headers, task_id)
        assert task["status"] == "failed"
        assert task["error"] == "Worker disconnected"
        assert task["worker_id"] == worker_id
        assert task["completed_at"] is not None


async def test_delete_leaves_pending_and_terminal_tasks_alone(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    done = await claimed(client, user_headers, worker_id)
    await patch(client, user_headers, done, "running")
    finished = (await patch(client, user_headers, done, "completed")).json()
    pending = await submitted(client, user_headers)
    await _delete(client, user_headers, worker_id)
    assert (await get_task(client, user_headers, pending))["status"] == "pending"
    after = await get_task(client, user_headers, done)
    assert after == finished


async def test_task_worker_id_survives_the_workers_deletion(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    await patch(client, user_headers, task_id, "running")
    await patch(client, user_headers, task_id, "completed")
    await _delete(client, user_headers, worker_id)
    assert (await get_task(client, user_headers, task_id))["worker_id"] == worker_id


async def test_delete_removes_links_and_providers(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    keeper = await registered_worker(client, user_headers)
    async with core.sessionmaker() as session:
        worker = await session.get(Worker, uuid.UUID(worker_id))
        assert worker is not None
        session.add(
            Provider(
                room_id="r1",
                category="fs",
                name="p",
                full_name="r1:fs:p",
                user_id=worker.user_id,
                worker_id=worker.id,
            )
        )
        await session.commit()
    await _delete(client, user_headers, worker_id)
    assert (await _get_job(client, user_headers)).json()["workers"] == [keeper]
    async with core.sessionmaker() as session:
        assert (await session.execute(select(Provider))).first() is None


async def test_orphan_job_is_soft_deleted_when_no_links_and_no_pending_tasks(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await _delete(client, user_headers, worker_id)
    assert (await _get_job(client, user_headers)).status_code == 404
    listed = await client.get(f"{JOBLIB}/rooms/r1/jobs", headers=user_headers)
    assert listed.json()["total"] == 0


async def test_claimed_or_running_tasks_do_not_keep_a_job_alive(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    await claimed(client, user_headers, worker_id)
    await _delete(client, user_headers, worker_id)
    assert (await _get_job(client, user_headers)).status_code == 404


async def test_pending_task_keeps_the_job_alive_with_no_workers(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    await _delete(client, user_headers, worker_id)
    job = await _get_job(client, user_headers)
    assert job.status_code == 200
    assert job.json()["workers"] == []


async def test_job_with_another_worker_is_not_soft_deleted(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await registered_worker(client, user_headers)
    await _delete(client, user_headers, worker_id)
    assert (await _get_job(client, user_headers)).status_code == 200


async def test_internal_job_is_never_soft_deleted(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    worker_id = await registered_worker(client, admin_headers, room="@internal")
    await _delete(client, admin_headers, worker_id)
    assert (await _get_job(client, admin_headers, "@internal:modifiers:Echo")).status_code == 200


async def test_soft_deleted_job_refuses_submit_and_task_listing_but_tasks_stay_readable(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    await _delete(client, user_headers, worker_id)
    assert (await submit(client, user_headers)).status_code == 404
    listing = await client.get(f"{JOBLIB}/rooms/r1/jobs/{JOB}/tasks", headers=user_headers)
    assert listing.status_code == 404
    assert (await get_task(client, user_headers, task_id))["job_name"] == JOB
    room_tasks = await client.get(f"{JOBLIB}/rooms/r1/tasks", headers=user_headers)
    assert room_tasks.json()["total"] == 1


async def test_reregistering_a_soft_deleted_job_reactivates_it_with_the_new_schema(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    first = (await register(client, user_headers, schema={"v": 1})).json()
    await _delete(client, user_headers, first["worker_id"])
    again = await register(client, user_headers, schema={"v": 2})
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert again.json()["schema"] == {"v": 2}
    assert (await _get_job(client, user_headers)).status_code == 200


async def test_delete_emits_the_cascade_events(
    client: httpx.AsyncClient, core: Core, admin_headers: Headers, emitted: Recorder
) -> None:
    worker_id = await registered_worker(client, admin_headers, room="@global", name="A")
    await register(client, admin_headers, room="r2", name="B", worker_id=worker_id)
    other = await registered_worker(client, admin_headers, room="@global", name="A")
    await submitted(client, admin_headers, job="@global:modifiers:A", room="r5")
    task_id = await claimed(client, admin_headers, worker_id)
    async with core.sessionmaker() as session:
        worker = await session.get(Worker, uuid.UUID(worker_id))
        assert worker is not None
        session.add(
            Provider(
                room_id="r3",
                category="fs",
                name="p",
                full_name="r3:fs:p",
                user_id=worker.user_id,
                worker_id=worker.id,
            )
        )
        await session.commit()
    emitted.clear()
    await _delete(client, admin_headers, worker_id)
    assert other
    status = [d for e, d, _ in emitted.emitted if e == "task_status_event"]
    assert [
        (d["id"], d["status"], d["error"], d["worker_id"], d["queue_position"]) for d in status
    ] == [(task_id, "failed", "Worker disconnected", worker_id, None)]
    assert sorted(emitted.names()) == sorted(
        [
            ("task_status_event", "room:r5"),
            ("jobs_invalidate", "room:@global"),
            ("jobs_invalidate", "room:r2"),
            ("providers_invalidate", "room:r3"),
        ]
    )
