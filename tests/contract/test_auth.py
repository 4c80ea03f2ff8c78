"""[ours] Every /v1/joblib endpoint needs an authenticated active user; viewers only read."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from app.db.models import User
from app.state import Core
from tests.contract.conftest import JOBLIB, Headers, assert_problem, register, submitted

SOME_ID = "00000000-0000-4000-8000-000000000000"
ENDPOINTS = [
    ("POST", f"{JOBLIB}/workers", None),
    ("GET", f"{JOBLIB}/workers", None),
    ("PATCH", f"{JOBLIB}/workers/{SOME_ID}", None),
    ("DELETE", f"{JOBLIB}/workers/{SOME_ID}", None),
    ("PUT", f"{JOBLIB}/rooms/r1/jobs", {"category": "modifiers", "name": "X"}),
    ("GET", f"{JOBLIB}/rooms/r1/jobs", None),
    ("GET", f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:X", None),
    ("GET", f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:X/tasks", None),
    ("GET", f"{JOBLIB}/rooms/r1/workers", None),
    ("POST", f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:X", {}),
    ("POST", f"{JOBLIB}/tasks/claim", {"worker_id": SOME_ID}),
    ("GET", f"{JOBLIB}/tasks/{SOME_ID}", None),
    ("PATCH", f"{JOBLIB}/tasks/{SOME_ID}", {"status": "running"}),
    ("GET", f"{JOBLIB}/rooms/r1/tasks", None),
]


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
async def test_every_endpoint_requires_authentication(
    client: httpx.AsyncClient, method: str, url: str, body: object
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        response = await client.request(method, url, json=body, headers=headers)
        assert_problem(response, 401, "not-authenticated", "Unauthorized")


async def test_viewer_may_read(
    client: httpx.AsyncClient, user_headers: Headers, viewer_headers: Headers
) -> None:
    await register(client, user_headers)
    task_id = await submitted(client, user_headers)
    for url in (
        f"{JOBLIB}/workers",
        f"{JOBLIB}/rooms/r1/jobs",
        f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:Echo",
        f"{JOBLIB}/rooms/r1/tasks",
        f"{JOBLIB}/tasks/{task_id}",
    ):
        assert (await client.get(url, headers=viewer_headers)).status_code == 200, url


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", f"{JOBLIB}/workers", None),
        ("PUT", f"{JOBLIB}/rooms/r1/jobs", {"category": "modifiers", "name": "Echo"}),
        ("POST", f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:Echo", {}),
    ],
)
async def test_viewer_may_not_write(
    client: httpx.AsyncClient,
    user_headers: Headers,
    viewer_headers: Headers,
    method: str,
    url: str,
    body: object,
) -> None:
    await register(client, user_headers)
    response = await client.request(method, url, json=body, headers=viewer_headers)
    assert response.status_code == 403
    assert response.json()["type"] == "/v1/problems/forbidden"


async def test_viewer_may_not_cancel_a_task(
    client: httpx.AsyncClient, user_headers: Headers, viewer_headers: Headers
) -> None:
    await register(client, user_headers)
    task_id = await submitted(client, user_headers)
    response = await client.patch(
        f"{JOBLIB}/tasks/{task_id}", json={"status": "cancelled"}, headers=viewer_headers
    )
    assert response.status_code == 403


async def test_token_of_an_inactive_user_is_401(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    async with core.sessionmaker() as session:
        await session.execute(
            update(User).values(is_active=False).where(User.email == "user@example.com")
        )
        await session.commit()
    response = await client.get(f"{JOBLIB}/workers", headers=user_headers)
    assert_problem(response, 401, "not-authenticated", "Unauthorized")
