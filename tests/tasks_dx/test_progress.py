"""POST /tasks/{id}/progress (beyond the contract): a fenced report of the running
attempt's progress, stored on the task, pushed to its room, at most one write per second
per task (a report within the second is deferred, never lost)."""

from __future__ import annotations

import httpx

from app.state import Core
from tests.recorder import Recorder
from tests.tasks_dx.calls import (
    JOBLIB,
    claim_one,
    finish,
    progress,
    read,
    settle,
    start,
    submit,
    worker,
)

Headers = dict[str, str]


async def running_task(client: httpx.AsyncClient, headers: Headers) -> tuple[str, str]:
    """(task id, worker id) of a task claimed and started by a new worker."""
    worker_id = await worker(client, headers)
    await submit(client, headers)
    task = await claim_one(client, headers, worker_id)
    await start(client, headers, task, worker_id)
    return task["id"], worker_id


async def test_progress_is_stored_on_the_task_and_pushed_to_its_room(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    recorder = Recorder.install(core)
    response = await progress(client, user_headers, task_id, worker_id, 1, 0.25, "a quarter")
    assert response.status_code == 202, response.text
    assert response.json() == {
        "id": task_id,
        "progress": 0.25,
        "message": "a quarter",
        "stored": True,
    }
    task = await read(client, user_headers, task_id)
    assert (task["progress"], task["progress_message"]) == (0.25, "a quarter")
    assert task["progress_at"] is not None
    [(room, payload)] = recorder.sent("task_progress")
    assert room == "room:r1"
    assert payload["id"] == task_id
    assert (payload["progress"], payload["message"], payload["attempt"]) == (0.25, "a quarter", 1)


async def test_a_task_not_yet_reporting_has_no_progress(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, _ = await running_task(client, user_headers)
    task = await read(client, user_headers, task_id)
    assert (task["progress"], task["progress_message"], task["progress_at"]) == (None, None, None)


async def test_two_reports_within_a_second_are_one_write_and_the_last_one_follows(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    recorder = Recorder.install(core)
    first = await progress(client, user_headers, task_id, worker_id, 1, 0.1, "one")
    second = await progress(client, user_headers, task_id, worker_id, 1, 0.2, "two")
    third = await progress(client, user_headers, task_id, worker_id, 1, 0.3, "three")
    assert [r.json()["stored"] for r in (first, second, third)] == [True, False, False]
    assert (await read(client, user_headers, task_id))["progress"] == 0.1
    assert len(recorder.sent("task_progress")) == 1
    task = await settle(client, user_headers, task_id, lambda t: t["progress"] == 0.3)
    assert task["progress_message"] == "three"
    await recorder.wait_for("task_progress", 2)
    assert [p["progress"] for _, p in recorder.sent("task_progress")] == [0.1, 0.3]


async def test_the_last_report_before_the_final_status_is_kept(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    await progress(client, user_headers, task_id, worker_id, 1, 0.5)
    deferred = await progress(client, user_headers, task_id, worker_id, 1, 1.0, "done")
    assert deferred.json()["stored"] is False
    await finish(client, user_headers, {"id": task_id, "attempt": 1}, worker_id, "completed")
    task = await settle(client, user_headers, task_id, lambda t: t["progress"] == 1.0)
    assert (task["status"], task["progress_message"]) == ("completed", "done")


async def test_progress_of_another_attempt_is_409_stale_attempt(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    response = await progress(client, user_headers, task_id, worker_id, 2, 0.5)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/v1/problems/stale-attempt"


async def test_progress_of_another_worker_is_409_stale_attempt(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, _ = await running_task(client, user_headers)
    other = await worker(client, user_headers)
    response = await progress(client, user_headers, task_id, other, 1, 0.5)
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/v1/problems/stale-attempt"


async def test_progress_of_an_unknown_task_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await worker(client, user_headers)
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await progress(client, user_headers, unknown, worker_id, 1, 0.5)
    assert response.status_code == 404, response.text
    assert response.json()["type"] == "/v1/problems/task-not-found"


async def test_progress_by_another_user_is_403(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    response = await progress(client, other_headers, task_id, worker_id, 1, 0.5)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_progress_of_a_finished_task_is_409(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    await finish(client, user_headers, {"id": task_id, "attempt": 1}, worker_id, "completed")
    response = await progress(client, user_headers, task_id, worker_id, 1, 0.5)
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/v1/problems/invalid-task-transition"


async def test_a_fraction_outside_0_to_1_is_422_problem_json(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, worker_id = await running_task(client, user_headers)
    for fraction in (-0.1, 1.5):
        response = await progress(client, user_headers, task_id, worker_id, 1, fraction)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    missing = await client.post(
        f"{JOBLIB}/tasks/{task_id}/progress", json={"progress": 0.5}, headers=user_headers
    )
    assert missing.status_code == 422, missing.text
