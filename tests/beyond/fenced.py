"""Calls of the SDK's protocol beyond the contract (worker ids, claim-batch, batch reports,
release), shared by its contract tests. Each returns the raw response."""

from __future__ import annotations

from typing import Any

import httpx

from tests.beyond.conftest import JOB, ROOM

JOBLIB = "/v1/joblib"


async def create_worker(
    client: httpx.AsyncClient, headers: dict[str, str], worker_id: str | None = None
) -> httpx.Response:
    body = None if worker_id is None else {"id": worker_id}
    return await client.post(f"{JOBLIB}/workers", json=body, headers=headers)


async def link(
    client: httpx.AsyncClient, headers: dict[str, str], worker_id: str, name: str = "Echo"
) -> None:
    """Register the job in ROOM and link it to `worker_id`."""
    response = await client.put(
        f"{JOBLIB}/rooms/{ROOM}/jobs",
        json={"category": "modifiers", "name": name, "worker_id": worker_id},
        headers=headers,
    )
    assert response.status_code in (200, 201), response.text


async def submit(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await client.post(f"{JOBLIB}/rooms/{ROOM}/tasks/{JOB}", json=body, headers=headers)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def claim_batch(
    client: httpx.AsyncClient, headers: dict[str, str], worker_id: str, limit: int
) -> httpx.Response:
    return await client.post(
        f"{JOBLIB}/tasks/claim-batch",
        json={"worker_id": worker_id, "limit": limit},
        headers=headers,
    )


async def report(
    client: httpx.AsyncClient, headers: dict[str, str], items: list[dict[str, Any]]
) -> httpx.Response:
    return await client.patch(f"{JOBLIB}/tasks", json={"items": items}, headers=headers)


async def release(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str, worker_id: str, attempt: int
) -> httpx.Response:
    return await client.post(
        f"{JOBLIB}/tasks/{task_id}/release",
        json={"worker_id": worker_id, "attempt": attempt},
        headers=headers,
    )


async def read(client: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> dict[str, Any]:
    response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
