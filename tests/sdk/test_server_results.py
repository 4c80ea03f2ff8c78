"""Server side of the SDK (in-process): task results on PATCH, and the leader's sweep of
tasks running past their job's timeout (both backends)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.state import Core

JOBLIB = "/v1/joblib"
MAX_RESULT = 1024


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_result_bytes": MAX_RESULT}


async def running_task(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    name: str = "Echo",
    timeout_seconds: float | None = None,
    max_attempts: int = 1,
) -> dict[str, Any]:
    """Register a job (optionally with a timeout), submit, claim and start one task."""
    body: dict[str, Any] = {"category": "modifiers", "name": name}
    if timeout_seconds is not None:
        body["timeout_seconds"] = timeout_seconds
    reg = await client.put(f"{JOBLIB}/rooms/r1/jobs", json=body, headers=headers)
    assert reg.status_code in (200, 201), reg.text
    worker_id = reg.json()["worker_id"]
    sub = await client.post(
        f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:{name}",
        json={"payload": {}, "max_attempts": max_attempts},
        headers=headers,
    )
    assert sub.status_code == 202, sub.text
    assert sub.json()["result"] is None
    claim = await client.post(
        f"{JOBLIB}/tasks/claim", json={"worker_id": worker_id}, headers=headers
    )
    task: dict[str, Any] = claim.json()["task"]
    started = await client.patch(
        f"{JOBLIB}/tasks/{task['id']}", json={"status": "running"}, headers=headers
    )
    assert started.status_code == 200, started.text
    return task


async def test_completed_report_stores_its_result_and_task_reads_return_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    task = await running_task(client, admin_headers)
    result = {"greeted": "Ada", "n": [1, 2.5, None]}
    done = await client.patch(
        f"{JOBLIB}/tasks/{task['id']}",
        json={"status": "completed", "result": result},
        headers=admin_headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["result"] == result
    read = await client.get(f"{JOBLIB}/tasks/{task['id']}", headers=admin_headers)
    assert read.json()["result"] == result


async def test_result_over_the_size_limit_is_a_413_problem(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    task = await running_task(client, admin_headers)
    response = await client.patch(
        f"{JOBLIB}/tasks/{task['id']}",
        json={"status": "completed", "result": "x" * MAX_RESULT},
        headers=admin_headers,
    )
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "/v1/problems/payload-too-large"
    read = await client.get(f"{JOBLIB}/tasks/{task['id']}", headers=admin_headers)
    assert read.json()["status"] == "running"


async def test_result_with_a_status_other_than_completed_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    task = await running_task(client, admin_headers)
    response = await client.patch(
        f"{JOBLIB}/tasks/{task['id']}",
        json={"status": "failed", "error": "x", "result": {"partial": True}},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text


async def test_task_running_past_its_job_timeout_plus_grace_is_failed_with_retry_rules(
    client: httpx.AsyncClient, admin_headers: dict[str, str], core: Core
) -> None:
    timed = await running_task(client, admin_headers, timeout_seconds=0.05, max_attempts=2)
    untimed = await running_task(client, admin_headers, name="Untimed")
    await asyncio.sleep(0.2)

    async def sweep() -> None:
        await core.tasks.fail_timed_out(0)

    async def read(task: dict[str, Any]) -> dict[str, Any]:
        response = await client.get(f"{JOBLIB}/tasks/{task['id']}", headers=admin_headers)
        body: dict[str, Any] = response.json()
        return body

    await sweep()
    retried = await read(timed)
    assert (retried["status"], retried["attempt"], retried["error"]) == ("pending", 2, None)
    attempts = await client.get(f"{JOBLIB}/tasks/{timed['id']}/attempts", headers=admin_headers)
    [ended] = attempts.json()["items"]
    assert ended["error"] == "timed out after 0.05 s (no report from the worker)"
    assert (await read(untimed))["status"] == "running"


async def test_task_within_its_timeout_plus_grace_is_left_running(
    client: httpx.AsyncClient, admin_headers: dict[str, str], core: Core
) -> None:
    task = await running_task(client, admin_headers, timeout_seconds=0.05)
    await core.tasks.fail_timed_out(60)
    read = await client.get(f"{JOBLIB}/tasks/{task['id']}", headers=admin_headers)
    assert read.json()["status"] == "running"


async def test_timed_out_task_on_its_last_attempt_fails(
    client: httpx.AsyncClient, admin_headers: dict[str, str], core: Core
) -> None:
    task = await running_task(client, admin_headers, timeout_seconds=0.05)
    await asyncio.sleep(0.2)
    await core.tasks.fail_timed_out(0)
    read = (await client.get(f"{JOBLIB}/tasks/{task['id']}", headers=admin_headers)).json()
    assert read["status"] == "failed"
    assert read["error"] == "timed out after 0.05 s (no report from the worker)"
