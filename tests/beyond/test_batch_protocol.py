"""The batch protocol of our SDK (beyond the contract): POST /tasks/claim-batch and
PATCH /tasks with fenced reports, and the idempotency of a fenced report that repeats the
task's current status (so a report whose answer was lost may be sent again)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from app.state import Core
from tests.beyond.fenced import claim_batch, create_worker, link, read, report, submit
from tests.recorder import Recorder

MAX_RESULT = 1024


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_result_bytes": MAX_RESULT}


async def _worker(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    worker_id = str(uuid.uuid4())
    assert (await create_worker(client, headers, worker_id)).status_code == 201
    await link(client, headers, worker_id)
    return worker_id


async def _claimed(
    client: httpx.AsyncClient, headers: dict[str, str], worker_id: str, count: int, **body: Any
) -> list[dict[str, Any]]:
    for _ in range(count):
        await submit(client, headers, **body)
    response = await claim_batch(client, headers, worker_id, count)
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    assert len(tasks) == count
    return tasks


def _item(task: dict[str, Any], worker_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": task["id"],
        "status": status,
        "attempt": task["attempt"],
        "worker_id": worker_id,
        **extra,
    }


def _slug(outcome: dict[str, Any]) -> str:
    problem: dict[str, Any] = outcome["problem"]
    return str(problem["type"]).rsplit("/", 1)[-1]


# --- claim-batch ---------------------------------------------------------------------
async def test_claim_batch_claims_up_to_limit_in_claim_order(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    low = await submit(client, user_headers, priority=0)
    high = await submit(client, user_headers, priority=5)
    later = await submit(client, user_headers, priority=0)
    first = await claim_batch(client, user_headers, worker, 2)
    assert first.status_code == 200, first.text
    assert [t["id"] for t in first.json()["tasks"]] == [high, low]
    for task in first.json()["tasks"]:
        assert (task["status"], task["worker_id"], task["attempt"]) == ("claimed", worker, 1)
    rest = await claim_batch(client, user_headers, worker, 5)
    assert [t["id"] for t in rest.json()["tasks"]] == [later]


async def test_claim_batch_with_nothing_claimable_is_an_empty_list(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    response = await claim_batch(client, user_headers, worker, 10)
    assert response.status_code == 200, response.text
    assert response.json() == {"tasks": []}


async def test_claim_batch_for_an_unknown_worker_is_404_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await claim_batch(client, user_headers, str(uuid.uuid4()), 3)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/v1/problems/worker-not-found"


async def test_claim_batch_for_another_users_worker_is_403_and_claims_nothing(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    task_id = await submit(client, user_headers)
    response = await claim_batch(client, other_headers, worker, 3)
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "/v1/problems/forbidden"
    assert (await read(client, user_headers, task_id))["status"] == "pending"


@pytest.mark.parametrize("limit", [0, 101])
async def test_claim_batch_limit_outside_1_to_100_is_422_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str], limit: int
) -> None:
    worker = await _worker(client, user_headers)
    response = await claim_batch(client, user_headers, worker, limit)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_claim_batches_never_hand_one_task_to_two_workers(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    workers = [await _worker(client, user_headers) for _ in range(4)]
    submitted = {await submit(client, user_headers) for _ in range(30)}
    answers = await asyncio.gather(*(claim_batch(client, user_headers, w, 10) for w in workers))
    claimed = [t["id"] for answer in answers for t in answer.json()["tasks"]]
    assert len(claimed) == len(set(claimed)) == 30
    assert set(claimed) == submitted


# --- PATCH /tasks ------------------------------------------------------------------------
async def test_batch_report_applies_items_independently_one_outcome_each_in_order(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    first, second = await _claimed(client, user_headers, worker, 2)
    unknown = str(uuid.uuid4())
    items = [
        _item(first, worker, "running"),
        {**_item(second, worker, "running"), "attempt": 7},
        {**_item(first, worker, "running"), "id": unknown},
    ]
    response = await report(client, user_headers, items)
    assert response.status_code == 200, response.text
    outcomes = response.json()["items"]
    assert [o["id"] for o in outcomes] == [first["id"], second["id"], unknown]
    assert outcomes[0] == {
        "id": first["id"],
        "applied": True,
        "task_status": "running",
        "problem": None,
    }
    assert (outcomes[1]["applied"], _slug(outcomes[1])) == (False, "stale-attempt")
    assert outcomes[1]["problem"]["status"] == 409
    assert (outcomes[2]["applied"], _slug(outcomes[2])) == (False, "task-not-found")
    assert outcomes[2]["problem"]["status"] == 404
    assert (await read(client, user_headers, second["id"]))["status"] == "claimed"


async def test_batch_report_completed_stores_each_result(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    tasks = await _claimed(client, user_headers, worker, 3)
    await report(client, user_headers, [_item(t, worker, "running") for t in tasks])
    items = [_item(t, worker, "completed", result={"n": n}) for n, t in enumerate(tasks)]
    response = await report(client, user_headers, items)
    assert [o["task_status"] for o in response.json()["items"]] == ["completed"] * 3
    for n, task in enumerate(tasks):
        assert (await read(client, user_headers, task["id"]))["result"] == {"n": n}


async def test_failed_report_with_attempts_left_is_applied_as_pending(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1, max_attempts=2)
    failed = _item(task, worker, "failed", error="boom")
    outcome = (await report(client, user_headers, [failed])).json()["items"][0]
    assert (outcome["applied"], outcome["task_status"]) == (True, "pending")
    read_back = await read(client, user_headers, task["id"])
    # The error stays with the attempt (GET .../attempts): pending shows none.
    assert (read_back["status"], read_back["attempt"], read_back["error"]) == ("pending", 2, None)


async def test_result_over_the_limit_is_a_413_problem_for_that_item_only(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    big, small = await _claimed(client, user_headers, worker, 2)
    await report(client, user_headers, [_item(t, worker, "running") for t in (big, small)])
    items = [
        _item(big, worker, "completed", result="x" * MAX_RESULT),
        _item(small, worker, "completed", result="ok"),
    ]
    outcomes = (await report(client, user_headers, items)).json()["items"]
    assert (outcomes[0]["applied"], _slug(outcomes[0])) == (False, "payload-too-large")
    assert outcomes[0]["problem"]["status"] == 413
    assert outcomes[1]["task_status"] == "completed"
    assert (await read(client, user_headers, big["id"]))["status"] == "running"


async def test_report_on_a_cancelled_task_is_an_invalid_transition_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1)
    cancel = await client.post(f"/v1/joblib/tasks/{task['id']}/cancel", headers=user_headers)
    assert cancel.status_code == 200
    outcome = (await report(client, user_headers, [_item(task, worker, "running")])).json()
    assert _slug(outcome["items"][0]) == "invalid-task-transition"
    assert (await read(client, user_headers, task["id"]))["status"] == "cancelled"


async def test_report_on_another_users_task_is_a_403_problem_for_that_item(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1)
    outcome = (await report(client, other_headers, [_item(task, worker, "running")])).json()
    assert (outcome["items"][0]["applied"], _slug(outcome["items"][0])) == (False, "forbidden")
    assert (await read(client, user_headers, task["id"]))["status"] == "claimed"


@pytest.mark.parametrize("missing", ["attempt", "worker_id"])
async def test_batch_report_items_must_be_fenced_else_422(
    client: httpx.AsyncClient, user_headers: dict[str, str], missing: str
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1)
    item = _item(task, worker, "running")
    del item[missing]
    response = await report(client, user_headers, [item])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await read(client, user_headers, task["id"]))["status"] == "claimed"


@pytest.mark.parametrize("count", [0, 501])
async def test_batch_report_of_0_or_over_500_items_is_422(
    client: httpx.AsyncClient, user_headers: dict[str, str], count: int
) -> None:
    item = {"id": str(uuid.uuid4()), "status": "running", "attempt": 1}
    items = [{**item, "worker_id": str(uuid.uuid4())}] * count
    response = await report(client, user_headers, items)
    assert response.status_code == 422, response.text


# --- idempotent fenced reports -----------------------------------------------------------
async def test_repeated_batch_after_a_lost_answer_is_applied_again_as_a_no_op(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    worker = await _worker(client, user_headers)
    tasks = await _claimed(client, user_headers, worker, 2)
    await report(client, user_headers, [_item(t, worker, "running") for t in tasks])
    items = [_item(t, worker, "completed", result=t["id"]) for t in tasks]
    await report(client, user_headers, items)
    before = [await read(client, user_headers, t["id"]) for t in tasks]
    recorder = Recorder.install(core)
    again = await report(client, user_headers, items)
    assert again.status_code == 200, again.text
    assert [(o["applied"], o["task_status"]) for o in again.json()["items"]] == [
        (True, "completed"),
        (True, "completed"),
    ]
    assert [await read(client, user_headers, t["id"]) for t in tasks] == before
    assert recorder.events == []


async def test_repeated_fenced_single_report_is_200_and_changes_nothing(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1)
    path = f"/v1/joblib/tasks/{task['id']}"
    fenced = {"status": "running", "attempt": task["attempt"], "worker_id": worker}
    first = await client.patch(path, json=fenced, headers=user_headers)
    recorder = Recorder.install(core)
    again = await client.patch(path, json=fenced, headers=user_headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["started_at"] == first.json()["started_at"]
    assert recorder.events == []


async def test_unfenced_repeated_report_stays_an_invalid_transition_as_in_the_contract(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1)
    path = f"/v1/joblib/tasks/{task['id']}"
    assert (await client.patch(path, json={"status": "running"}, headers=user_headers)).is_success
    again = await client.patch(path, json={"status": "running"}, headers=user_headers)
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "/v1/problems/invalid-task-transition"


async def test_repeated_report_of_a_stale_attempt_is_still_refused(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    [task] = await _claimed(client, user_headers, worker, 1, max_attempts=2)
    failed = _item(task, worker, "failed", error="boom")
    await report(client, user_headers, [failed])
    again = (await report(client, user_headers, [failed])).json()["items"][0]
    assert (again["applied"], _slug(again)) == (False, "stale-attempt")
