"""Declared jobs (issue 19, item 1): a job without a worker accepts submits; a declaration
keeps it from the orphan rule until it is deleted; registration and declaration agree on
the schema, and only the registrant (or an admin) changes the job."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.services.events import JobsInvalidate
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    assert_problem,
    claim,
    patch,
    register,
    submit,
    submitted,
)

ROOM = "r1"
JOB = "r1:modifiers:Echo"
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}}


@pytest.fixture
def emitted(core: Core) -> Recorder:
    recorder = Recorder()
    core.publisher.fanout.emitter = recorder
    return recorder


async def declare(
    client: httpx.AsyncClient, headers: Headers, room: str = ROOM, **fields: Any
) -> httpx.Response:
    body: dict[str, Any] = {"category": "modifiers", "name": "Echo", "schema": SCHEMA, **fields}
    return await client.put(f"{JOBLIB}/rooms/{room}/job-definitions", json=body, headers=headers)


async def undeclare(client: httpx.AsyncClient, headers: Headers) -> httpx.Response:
    path = f"{JOBLIB}/rooms/{ROOM}/job-definitions/modifiers/Echo"
    return await client.delete(path, headers=headers)


async def job_of(client: httpx.AsyncClient, headers: Headers) -> httpx.Response:
    return await client.get(f"{JOBLIB}/rooms/{ROOM}/jobs/{JOB}", headers=headers)


async def worker_for(client: httpx.AsyncClient, headers: Headers, schema: Any = SCHEMA) -> str:
    response = await register(client, headers, schema=schema)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["worker_id"])


async def test_a_declared_job_accepts_submits_before_any_worker_and_a_worker_then_runs_them(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    declared = await declare(client, user_headers)
    assert declared.status_code == 201, declared.text
    assert declared.json()["declared"] is True
    assert declared.json()["workers"] == []
    task_id = await submitted(client, user_headers)
    worker_id = await worker_for(client, user_headers)
    task = (await claim(client, user_headers, worker_id)).json()["task"]
    assert task["id"] == task_id
    assert (await patch(client, user_headers, task_id, "running")).status_code == 200
    done = await patch(client, user_headers, task_id, "completed")
    assert done.json()["status"] == "completed"


async def test_declaring_an_existing_job_again_is_200(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    assert (await declare(client, user_headers)).status_code == 201
    again = await declare(client, user_headers)
    assert again.status_code == 200, again.text
    assert again.json()["full_name"] == JOB


async def test_a_declaration_sets_the_defaults_and_limits_submits_use(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await declare(
        client,
        user_headers,
        max_attempts=3,
        priority=7,
        timeout_seconds=30,
        max_running=2,
        max_running_per_key=1,
    )
    job = response.json()
    assert (job["max_attempts"], job["priority"], job["timeout_seconds"]) == (3, 7, 30)
    assert (job["max_running"], job["max_running_per_key"]) == (2, 1)
    task = (await submit(client, user_headers)).json()
    assert (task["max_attempts"], task["priority"]) == (3, 7)


@pytest.mark.parametrize(
    "field",
    [
        {"max_attempts": 0},
        {"max_attempts": 101},
        {"timeout_seconds": 0},
        {"timeout_seconds": 7 * 24 * 3600 + 1},
        {"priority": 1_000_001},
        {"max_running": 0},
        {"max_running_per_key": 0},
    ],
)
async def test_a_declaration_out_of_bounds_is_422(
    client: httpx.AsyncClient, user_headers: Headers, field: dict[str, Any]
) -> None:
    assert (await declare(client, user_headers, **field)).status_code == 422


async def test_a_declared_job_survives_its_last_worker_leaving_while_an_undeclared_one_goes(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await declare(client, user_headers)
    worker_id = await worker_for(client, user_headers)
    other = await register(client, user_headers, name="Plain", worker_id=worker_id)
    assert other.status_code == 201, other.text
    gone = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert gone.status_code == 204
    assert (await job_of(client, user_headers)).status_code == 200
    plain = await client.get(f"{JOBLIB}/rooms/{ROOM}/jobs/r1:modifiers:Plain", headers=user_headers)
    assert plain.status_code == 404


async def test_deleting_the_declaration_of_a_job_nothing_keeps_removes_it_at_once(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    await declare(client, user_headers)
    emitted.clear()
    assert (await undeclare(client, user_headers)).status_code == 204
    assert (await job_of(client, user_headers)).status_code == 404
    invalidate = JobsInvalidate(ROOM)
    assert (invalidate.event_name, invalidate.room) in emitted.names()


async def test_deleting_a_declaration_keeps_the_job_while_a_task_waits_for_it(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await declare(client, user_headers)
    task_id = await submitted(client, user_headers)
    assert (await undeclare(client, user_headers)).status_code == 204
    job = await job_of(client, user_headers)
    assert job.status_code == 200
    assert job.json()["declared"] is False
    worker_id = await worker_for(client, user_headers)
    task = (await claim(client, user_headers, worker_id)).json()["task"]
    assert task["id"] == task_id


async def test_deleting_a_declaration_keeps_a_job_a_worker_serves(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await declare(client, user_headers)
    await worker_for(client, user_headers)
    assert (await undeclare(client, user_headers)).status_code == 204
    assert (await job_of(client, user_headers)).json()["declared"] is False


async def test_deleting_the_declaration_of_an_undeclared_job_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await worker_for(client, user_headers)
    assert_problem(
        await undeclare(client, user_headers), 404, "job-not-found", f"No declared job '{JOB}'"
    )


async def test_a_declaration_with_another_schema_than_the_registered_job_is_409(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await worker_for(client, user_headers, schema={"type": "object"})
    assert_problem(
        await declare(client, user_headers),
        409,
        "schema-conflict",
        f"Schema mismatch for job '{JOB}'",
    )


async def test_a_registration_with_another_schema_than_the_declared_job_is_409(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await declare(client, user_headers)
    assert_problem(
        await register(client, user_headers, schema={"type": "object"}),
        409,
        "schema-conflict",
        f"Schema mismatch for job '{JOB}'",
    )


async def test_a_soft_deleted_job_is_reactivated_by_a_declaration_with_its_new_schema(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await worker_for(client, user_headers, schema={"type": "object"})
    await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert (await job_of(client, user_headers)).status_code == 404
    response = await declare(client, user_headers)
    assert response.status_code == 201, response.text
    assert response.json()["schema"] == SCHEMA


async def test_only_the_registrant_or_an_admin_changes_a_declared_job(
    client: httpx.AsyncClient,
    user_headers: Headers,
    other_headers: Headers,
    admin_headers: Headers,
) -> None:
    await declare(client, user_headers)
    assert_problem(
        await declare(client, other_headers, priority=3),
        403,
        "forbidden",
        f"Only the user who first registered job '{JOB}' (or an admin) may change its "
        "default_priority",
    )
    assert (await declare(client, other_headers)).status_code == 200  # nothing to change
    assert (await declare(client, admin_headers, priority=3)).json()["priority"] == 3


async def test_a_non_registrant_may_not_declare_a_job_a_worker_registered(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    await worker_for(client, user_headers)
    response = await declare(client, other_headers)
    assert response.status_code == 403, response.text


async def test_only_the_registrant_or_an_admin_deletes_a_declaration(
    client: httpx.AsyncClient,
    user_headers: Headers,
    other_headers: Headers,
    admin_headers: Headers,
) -> None:
    await declare(client, user_headers)
    assert (await undeclare(client, other_headers)).status_code == 403
    assert (await undeclare(client, admin_headers)).status_code == 204


async def test_internal_jobs_are_not_declared_by_clients(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    assert_problem(
        await declare(client, admin_headers, room="@internal"),
        403,
        "forbidden",
        "The server declares its own @internal jobs",
    )


async def test_a_global_declaration_needs_an_admin(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers
) -> None:
    assert (await declare(client, user_headers, room="@global")).status_code == 403
    assert (await declare(client, admin_headers, room="@global")).status_code == 201


async def test_a_viewer_may_not_declare(client: httpx.AsyncClient, viewer_headers: Headers) -> None:
    assert (await declare(client, viewer_headers)).status_code == 403


async def test_a_category_outside_the_allow_list_is_400(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    body = {"category": "nope", "name": "Echo", "schema": SCHEMA}
    response = await client.put(
        f"{JOBLIB}/rooms/{ROOM}/job-definitions", json=body, headers=user_headers
    )
    assert response.status_code == 400


async def test_a_registration_sets_concurrency_limits_under_the_registrant_rule(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    first = await client.put(
        f"{JOBLIB}/rooms/{ROOM}/jobs",
        json={"category": "modifiers", "name": "Echo", "max_running": 4, "max_running_per_key": 2},
        headers=user_headers,
    )
    assert (first.json()["max_running"], first.json()["max_running_per_key"]) == (4, 2)
    kept = await register(client, user_headers)  # omitted: left as they are
    assert kept.json()["max_running"] == 4
    refused = await client.put(
        f"{JOBLIB}/rooms/{ROOM}/jobs",
        json={"category": "modifiers", "name": "Echo", "max_running": 9},
        headers=other_headers,
    )
    assert refused.status_code == 403


async def test_limits_declared_on_a_busy_job_count_its_running_tasks_at_once(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await worker_for(client, user_headers)
    await submitted(client, user_headers)
    await submitted(client, user_headers)
    held = (await claim(client, user_headers, worker_id)).json()["task"]
    assert (await patch(client, user_headers, held["id"], "running")).status_code == 200
    assert (await declare(client, user_headers, max_running=1)).status_code == 200
    # No sweep ran: the declaration itself counted the task claimed before the limit.
    assert (await claim(client, user_headers, worker_id)).json()["task"] is None
