"""POST /tasks/{id}/release (beyond the contract): a stopping worker hands a claimed or
running task back to the queue without spending an attempt, fenced by attempt and worker."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.state import Core
from tests.beyond.fenced import claim_batch, create_worker, link, read, release, report, submit
from tests.recorder import Recorder


async def _worker(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    worker_id = str(uuid.uuid4())
    assert (await create_worker(client, headers, worker_id)).status_code == 201
    await link(client, headers, worker_id)
    return worker_id


async def _claim_one(
    client: httpx.AsyncClient, headers: dict[str, str], worker_id: str
) -> dict[str, Any]:
    response = await claim_batch(client, headers, worker_id, 1)
    [task] = response.json()["tasks"]
    assert isinstance(task, dict)
    return task


async def _start(
    client: httpx.AsyncClient, headers: dict[str, str], task: dict[str, Any], worker_id: str
) -> None:
    item = {"id": task["id"], "status": "running", "attempt": task["attempt"]}
    outcome = await report(client, headers, [{**item, "worker_id": worker_id}])
    assert outcome.json()["items"][0]["applied"], outcome.text


async def test_released_claimed_task_is_pending_again_without_spending_an_attempt(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers, max_attempts=1)
    task = await _claim_one(client, user_headers, worker)
    recorder = Recorder.install(core)
    response = await release(client, user_headers, task_id, worker, task["attempt"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["worker_id"]) == ("pending", None)
    assert (body["attempt"], body["max_attempts"]) == (2, 2)
    assert body["queue_position"] == 1
    assert recorder.sent("task_available")


async def test_released_running_task_is_claimed_and_completed_by_another_worker(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    first = await _worker(client, user_headers)
    task_id = await submit(client, user_headers, max_attempts=1)
    task = await _claim_one(client, user_headers, first)
    await _start(client, user_headers, task, first)
    assert (await release(client, user_headers, task_id, first, 1)).status_code == 200
    second = await _worker(client, user_headers)
    again = await _claim_one(client, user_headers, second)
    assert (again["id"], again["attempt"], again["worker_id"]) == (task_id, 2, second)
    await _start(client, user_headers, again, second)
    done = {"id": task_id, "status": "completed", "attempt": 2, "worker_id": second}
    assert (await report(client, user_headers, [done])).json()["items"][0]["applied"]
    assert (await read(client, user_headers, task_id))["status"] == "completed"


async def test_release_keeps_the_remaining_attempts_a_failure_after_it_is_final(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers, max_attempts=1)
    await release(
        client,
        user_headers,
        task_id,
        worker,
        (await _claim_one(client, user_headers, worker))["attempt"],
    )
    again = await _claim_one(client, user_headers, worker)
    failed = {"id": task_id, "status": "failed", "error": "boom", "attempt": again["attempt"]}
    outcome = (await report(client, user_headers, [{**failed, "worker_id": worker}])).json()
    assert outcome["items"][0]["task_status"] == "failed"


async def test_releasing_twice_is_409_stale_attempt(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    attempt = (await _claim_one(client, user_headers, worker))["attempt"]
    assert (await release(client, user_headers, task_id, worker, attempt)).status_code == 200
    again = await release(client, user_headers, task_id, worker, attempt)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"] == "/v1/problems/stale-attempt"


async def test_reports_of_the_released_attempt_are_refused_as_stale(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    task = await _claim_one(client, user_headers, worker)
    await release(client, user_headers, task_id, worker, task["attempt"])
    late = await client.patch(
        f"/v1/joblib/tasks/{task_id}",
        json={"status": "running", "attempt": task["attempt"], "worker_id": worker},
        headers=user_headers,
    )
    assert late.status_code == 409, late.text
    assert late.json()["type"] == "/v1/problems/stale-attempt"
    assert (await read(client, user_headers, task_id))["status"] == "pending"


async def test_release_naming_another_worker_is_409_stale_attempt(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    holder = await _worker(client, user_headers)
    bystander = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    attempt = (await _claim_one(client, user_headers, holder))["attempt"]
    response = await release(client, user_headers, task_id, bystander, attempt)
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/v1/problems/stale-attempt"


async def test_another_user_may_not_release_and_the_task_stays_claimed(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    attempt = (await _claim_one(client, user_headers, worker))["attempt"]
    response = await release(client, other_headers, task_id, worker, attempt)
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "/v1/problems/forbidden"
    assert (await read(client, user_headers, task_id))["status"] == "claimed"


async def test_admin_may_release_a_users_task(
    client: httpx.AsyncClient, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    attempt = (await _claim_one(client, user_headers, worker))["attempt"]
    response = await release(client, admin_headers, task_id, worker, attempt)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"


async def test_finished_task_is_409_invalid_transition(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    task = await _claim_one(client, user_headers, worker)
    await _start(client, user_headers, task, worker)
    done = {"id": task_id, "status": "completed", "attempt": task["attempt"], "worker_id": worker}
    await report(client, user_headers, [done])
    response = await release(client, user_headers, task_id, worker, task["attempt"])
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/v1/problems/invalid-task-transition"
    assert (await read(client, user_headers, task_id))["status"] == "completed"


async def test_unknown_task_is_404_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    response = await release(client, user_headers, str(uuid.uuid4()), worker, 1)
    assert response.status_code == 404, response.text
    assert response.json()["type"] == "/v1/problems/task-not-found"
