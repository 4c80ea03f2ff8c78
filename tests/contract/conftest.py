"""Helpers for the /v1/joblib contract tests: short calls and a problem+json matcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.db.models import User
from app.services import tokens, users
from app.state import Core
from tests.conftest import ADMIN_EMAIL

JOBLIB = "/v1/joblib"
Headers = dict[str, str]
# Hashing a password costs ~0.5 s; these fixtures skip login and mint tokens directly
# (the login route has its own tests), so a test's setup stays cheap.
_PASSWORD_HASH = users.hash_password("password")


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Content",
    503: "Service Unavailable",
}


def assert_problem(response: httpx.Response, status: int, slug: str, detail: str) -> None:
    """The response is the contract's problem+json with this type and exact detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"/v1/problems/{slug}"
    assert body["status"] == status
    assert body["title"] == TITLES[status]
    assert body["detail"] == detail
    assert "instance" not in body


async def register(
    client: httpx.AsyncClient,
    headers: Headers,
    room: str = "r1",
    name: str = "Echo",
    *,
    category: str = "modifiers",
    schema: dict[str, Any] | None = None,
    worker_id: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"category": category, "name": name, "schema_": schema or {}}
    if worker_id is not None:
        body["worker_id"] = worker_id
    return await client.put(f"{JOBLIB}/rooms/{room}/jobs", json=body, headers=headers)


async def registered_worker(
    client: httpx.AsyncClient, headers: Headers, room: str = "r1", name: str = "Echo"
) -> str:
    """Register a job and return the auto-created worker's id."""
    response = await register(client, headers, room, name)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["worker_id"])


async def submit(
    client: httpx.AsyncClient,
    headers: Headers,
    job: str = "r1:modifiers:Echo",
    room: str = "r1",
    payload: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(
        f"{JOBLIB}/rooms/{room}/tasks/{job}", json={"payload": payload or {}}, headers=headers
    )


async def submitted(client: httpx.AsyncClient, headers: Headers, **kwargs: Any) -> str:
    response = await submit(client, headers, **kwargs)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def claim(client: httpx.AsyncClient, headers: Headers, worker_id: str) -> httpx.Response:
    return await client.post(
        f"{JOBLIB}/tasks/claim", json={"worker_id": worker_id}, headers=headers
    )


async def claimed(client: httpx.AsyncClient, headers: Headers, worker_id: str) -> str:
    response = await claim(client, headers, worker_id)
    assert response.status_code == 200, response.text
    task = response.json()["task"]
    assert task is not None
    return str(task["id"])


async def patch(
    client: httpx.AsyncClient,
    headers: Headers,
    task_id: str,
    status: str,
    error: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"status": status}
    if error is not None:
        body["error"] = error
    return await client.patch(f"{JOBLIB}/tasks/{task_id}", json=body, headers=headers)


async def get_task(client: httpx.AsyncClient, headers: Headers, task_id: str) -> dict[str, Any]:
    response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Recorder:
    """Stands in for the Socket.IO server: records what the publisher emits."""

    emitted: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)

    async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None:
        self.emitted.append((event, data, room))

    def names(self) -> list[tuple[str, str | None]]:
        return [(event, room) for event, _, room in self.emitted]

    def clear(self) -> None:
        self.emitted.clear()


@pytest.fixture
def emitted(core: Core) -> Recorder:
    recorder = Recorder()
    core.publisher.fanout.emitter = recorder
    return recorder


async def _headers(core: Core, email: str, role: str) -> Headers:
    async with core.sessionmaker() as session:
        user = await users.get_by_email(session, email)
        if user is None:
            user = User(email=email, hashed_password=_PASSWORD_HASH, role=role)
            session.add(user)
            await session.commit()
        token = tokens.mint(user.id, core.secret, 3600)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_headers(core: Core) -> Headers:
    return await _headers(core, ADMIN_EMAIL, "admin")


@pytest.fixture
async def user_headers(core: Core) -> Headers:
    return await _headers(core, "user@example.com", "operator")


@pytest.fixture
async def other_headers(core: Core) -> Headers:
    return await _headers(core, "other@example.com", "operator")


@pytest.fixture
async def viewer_headers(core: Core) -> Headers:
    return await _headers(core, "viewer@example.com", "viewer")
