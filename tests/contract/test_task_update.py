"""REST.md §1 state machine and §2 PATCH /tasks/{id}: authorization order and side effects."""

from __future__ import annotations

import itertools
import uuid

import httpx
import pytest

from app.services.tasks.states import EDGES, Cause, TaskStatus
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    assert_problem,
    claimed,
    get_task,
    patch,
    register,
    registered_worker,
    submitted,
)
from tests.factories import make_job, make_task

ALLOWED = sorted(EDGES[Cause.REPORT])
DISALLOWED = [
    (old, new)
    for old, new in itertools.product(TaskStatus, TaskStatus)
    if (old, new) not in EDGES[Cause.REPORT]
]


async def _task_in(core: Core, status: str) -> str:
    async with core.sessionmaker() as session:
        job = await make_job(session, "r1")
        task = await make_task(session, job, status=status)
        await session.commit()
        return str(task.id)


def test_transition_table_is_the_contracts() -> None:
    assert set(ALLOWED) == {
        ("pending", "claimed"),
        ("pending", "cancelled"),
        ("claimed", "running"),
        ("claimed", "failed"),
        ("claimed", "cancelled"),
        ("running", "completed"),
        ("running", "failed"),
        ("running", "cancelled"),
    }


@pytest.mark.parametrize(("old", "new"), ALLOWED)
async def test_allowed_transition_is_200(
    client: httpx.AsyncClient, core: Core, admin_headers: Headers, old: str, new: str
) -> None:
    task_id = await _task_in(core, old)
    response = await patch(client, admin_headers, task_id, new)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == new


@pytest.mark.parametrize(("old", "new"), DISALLOWED)
async def test_disallowed_transition_is_409(
    client: httpx.AsyncClient, core: Core, admin_headers: Headers, old: str, new: str
) -> None:
    task_id = await _task_in(core, old)
    response = await patch(client, admin_headers, task_id, new)
    assert_problem(
        response, 409, "invalid-task-transition", f"Cannot transition from '{old}' to '{new}'"
    )


async def test_running_sets_started_at_and_terminal_sets_completed_at(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    running = (await patch(client, user_headers, task_id, "running")).json()
    assert running["started_at"] is not None
    assert running["completed_at"] is None
    done = (await patch(client, user_headers, task_id, "completed")).json()
    assert done["started_at"] == running["started_at"]
    assert done["completed_at"] is not None
    assert done["worker_id"] == worker_id


async def test_error_is_stored_on_terminal_status(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    failed = (await patch(client, user_headers, task_id, "failed", error="boom")).json()
    assert failed["error"] == "boom"
    assert failed["completed_at"] is not None


async def test_error_is_ignored_on_non_terminal_status(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    running = (await patch(client, user_headers, task_id, "running", error="ignored")).json()
    assert running["error"] is None


async def test_empty_error_is_not_stored(client: httpx.AsyncClient, user_headers: Headers) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    failed = (await patch(client, user_headers, task_id, "failed", error="")).json()
    assert failed["error"] is None


async def test_unknown_task_is_404_before_authorization(
    client: httpx.AsyncClient, viewer_headers: Headers
) -> None:
    task_id = uuid.uuid4()
    response = await patch(client, viewer_headers, str(task_id), "running")
    assert_problem(response, 404, "task-not-found", f"Task '{task_id}' not found")


async def test_unclaimed_task_of_someone_else_is_403_not_claimed(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    await register(client, user_headers)
    task_id = await submitted(client, user_headers)
    response = await patch(client, other_headers, task_id, "cancelled")
    assert_problem(response, 403, "forbidden", "Task not claimed by any worker")


async def test_task_of_another_users_worker_is_403_not_authorized(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    response = await patch(client, other_headers, task_id, "running")
    assert_problem(response, 403, "forbidden", "Not authorized to update this task")


async def test_authorization_is_checked_before_the_transition(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    response = await patch(client, other_headers, task_id, "pending")
    assert response.status_code == 403


async def test_task_of_a_deleted_worker_is_403_not_authorized(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    response = await patch(client, user_headers, task_id, "cancelled")
    assert_problem(response, 403, "forbidden", "Not authorized to update this task")


async def test_superuser_may_update_any_task(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    response = await patch(client, admin_headers, task_id, "cancelled")
    assert response.status_code == 200


async def test_superuser_pending_to_claimed_does_not_set_worker_id(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers
) -> None:
    await register(client, user_headers)
    task_id = await submitted(client, user_headers)
    response = await patch(client, admin_headers, task_id, "claimed")
    assert response.status_code == 200
    assert response.json()["worker_id"] is None


async def test_submitter_may_cancel_its_own_pending_task(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    await register(client, user_headers)
    task_id = await submitted(client, other_headers, job="r1:modifiers:Echo")
    response = await patch(client, other_headers, task_id, "cancelled")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["completed_at"] is not None


async def test_submitter_may_not_otherwise_update_its_pending_task(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    task_id = await submitted(client, user_headers)
    response = await patch(client, user_headers, task_id, "claimed")
    assert_problem(response, 403, "forbidden", "Task not claimed by any worker")


async def test_submitter_may_not_cancel_once_claimed_by_someone_elses_worker(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, other_headers)
    task_id = await claimed(client, user_headers, worker_id)
    response = await patch(client, other_headers, task_id, "cancelled")
    assert_problem(response, 403, "forbidden", "Not authorized to update this task")


async def test_invalid_status_value_is_422(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await patch(client, user_headers, str(uuid.uuid4()), "done")
    assert response.status_code == 422


async def test_patch_emits_status_event_to_the_task_room(
    client: httpx.AsyncClient, admin_headers: Headers, emitted: Recorder
) -> None:
    worker_id = await registered_worker(client, admin_headers, room="@global")
    await submitted(client, admin_headers, job="@global:modifiers:Echo", room="r7")
    task_id = await claimed(client, admin_headers, worker_id)
    emitted.clear()
    await patch(client, admin_headers, task_id, "running")
    assert [(e, d["status"], r) for e, d, r in emitted.emitted] == [
        ("task_status_event", "running", "room:r7")
    ]


async def test_terminal_patch_soft_deletes_an_orphan_job_and_keeps_job_name(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers, emitted: Recorder
) -> None:
    worker_id = await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    job = await client.get(f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:Echo", headers=user_headers)
    assert job.status_code == 200  # the pending task keeps it alive
    assert job.json()["workers"] == []
    emitted.clear()
    response = await patch(client, admin_headers, task_id, "cancelled")
    assert response.json()["job_name"] == "r1:modifiers:Echo"
    assert ("jobs_invalidate", {}, "room:r1") in emitted.emitted
    gone = await client.get(f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:Echo", headers=user_headers)
    assert gone.status_code == 404
    assert (await get_task(client, user_headers, task_id))["job_name"] == "r1:modifiers:Echo"
