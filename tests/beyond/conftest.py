"""Helpers for the beyond-the-contract tests: register a job, submit, claim, report."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ROOM = "r1"
JOB = "r1:modifiers:Echo"


class Api:
    """Thin calls against the ASGI client; each asserts nothing but returns the response."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def register(self, headers: dict[str, str], name: str = "Echo") -> str:
        reg = await self.client.put(
            f"/v1/joblib/rooms/{ROOM}/jobs",
            json={"category": "modifiers", "name": name},
            headers=headers,
        )
        assert reg.status_code in (200, 201), reg.text
        worker_id: str = reg.json()["worker_id"]
        return worker_id

    async def submit(
        self, headers: dict[str, str], job: str = JOB, room: str = ROOM, **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/joblib/rooms/{room}/tasks/{job}", json=body, headers=headers
        )

    async def claim(self, headers: dict[str, str], worker_id: str) -> dict[str, Any] | None:
        response = await self.client.post(
            "/v1/joblib/tasks/claim", json={"worker_id": worker_id}, headers=headers
        )
        assert response.status_code == 200, response.text
        task: dict[str, Any] | None = response.json()["task"]
        return task

    async def patch(self, headers: dict[str, str], task_id: str, **body: Any) -> httpx.Response:
        return await self.client.patch(f"/v1/joblib/tasks/{task_id}", json=body, headers=headers)

    async def failed_task(self, headers: dict[str, str], error: str) -> dict[str, Any]:
        """A task of JOB taken through claim and running to failed with `error`."""
        worker = await self.register(headers)
        await self.submit(headers)
        task = await self.claim(headers, worker)
        assert task is not None
        await self.patch(headers, task["id"], status="running")
        await self.patch(headers, task["id"], status="failed", error=error)
        return task

    async def get(self, headers: dict[str, str], task_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/joblib/tasks/{task_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)
