"""The FastAPI example against a live server: it submits, reads, and answers an unknown
task id with a 404 problem, not a 500 (both backends)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.sdk.conftest import Server

pytestmark = pytest.mark.slow


@pytest.fixture
async def client(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("JOBSERVER_URL", server.url)
    monkeypatch.setenv("JOBSERVER_TOKEN", server.token)
    from examples.fastapi_app.app import app

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://example") as client,
    ):
        yield client


async def test_an_unknown_task_id_is_a_404_problem(client: httpx.AsyncClient) -> None:
    task_id = uuid.uuid4()
    response = await client.get(f"/hello/{task_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert str(task_id) in response.json()["detail"]


async def test_a_submitted_task_is_read_back(client: httpx.AsyncClient) -> None:
    submitted = await client.post("/hello", params={"who": "Ada", "delay": 60})
    assert submitted.status_code == 202
    read = await client.get(f"/hello/{submitted.json()['task_id']}")
    assert read.status_code == 200
    assert read.json() == {"status": "pending", "result": None, "error": None}
