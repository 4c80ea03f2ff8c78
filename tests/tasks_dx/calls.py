"""Calls of the task context's protocol (progress reports, the attempt list), plus the
fenced worker calls the tests need. Each returns the raw response or the parsed body."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.beyond.fenced import JOBLIB, claim_batch, create_worker, link, read, report, submit

__all__ = [
    "JOBLIB",
    "attempts",
    "claim_one",
    "finish",
    "progress",
    "read",
    "settle",
    "start",
    "submit",
    "worker",
]
Headers = dict[str, str]


async def worker(client: httpx.AsyncClient, headers: Headers) -> str:
    worker_id = str(uuid.uuid4())
    assert (await create_worker(client, headers, worker_id)).status_code == 201
    await link(client, headers, worker_id)
    return worker_id


async def claim_one(client: httpx.AsyncClient, headers: Headers, worker_id: str) -> dict[str, Any]:
    """Claims until the worker gets a task (a retried task may be due a little later)."""
    async with asyncio.timeout(10):
        while True:
            tasks = (await claim_batch(client, headers, worker_id, 1)).json()["tasks"]
            if tasks:
                task: dict[str, Any] = tasks[0]
                return task
            await asyncio.sleep(0.05)


async def start(
    client: httpx.AsyncClient, headers: Headers, task: dict[str, Any], worker_id: str
) -> None:
    await finish(client, headers, task, worker_id, "running")


async def finish(
    client: httpx.AsyncClient,
    headers: Headers,
    task: dict[str, Any],
    worker_id: str,
    status: str,
    **extra: Any,
) -> None:
    item = {"id": task["id"], "status": status, "attempt": task["attempt"], "worker_id": worker_id}
    outcome = await report(client, headers, [{**item, **extra}])
    assert outcome.json()["items"][0]["applied"], outcome.text


async def progress(
    client: httpx.AsyncClient,
    headers: Headers,
    task_id: str,
    worker_id: str,
    attempt: int,
    fraction: float,
    message: str | None = None,
) -> httpx.Response:
    body = {"worker_id": worker_id, "attempt": attempt, "progress": fraction, "message": message}
    return await client.post(f"{JOBLIB}/tasks/{task_id}/progress", json=body, headers=headers)


async def attempts(
    client: httpx.AsyncClient, headers: Headers, task_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{JOBLIB}/tasks/{task_id}/attempts", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settle(
    client: httpx.AsyncClient,
    headers: Headers,
    task_id: str,
    until: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """The task once `until` holds for it (5 s at most)."""
    async with asyncio.timeout(5):
        while True:
            task = await read(client, headers, task_id)
            if until(task):
                return task
            await asyncio.sleep(0.05)
