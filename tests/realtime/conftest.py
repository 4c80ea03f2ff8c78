"""One live `jobserver serve` per backend for the whole realtime package (a start costs
seconds), plus small Socket.IO client helpers. Tests isolate themselves by fresh users
and room ids."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import socketio
from sqlalchemy import insert

from app.db.models import User
from app.db.session import make_engine
from app.services import tokens
from tests.conftest import BACKENDS, TEST_SECRET, Templates, clone_pg, drop_pg
from tests.live import LiveServer, live_server

GRACE_SECONDS = 2.0
JOIN_SETTLE_SECONDS = 0.3  # a join is a fire-and-forget emit; let the server process it


async def clone_database(backend: str, templates: Templates, directory: Path) -> str:
    if backend == "sqlite":
        assert templates.sqlite_file is not None
        target = directory / "jobserver.db"
        shutil.copyfile(templates.sqlite_file, target)
        return f"sqlite+aiosqlite:///{target}"
    return await clone_pg(templates)


def drop_database(templates: Templates, url: str) -> None:
    if url.startswith("postgresql"):
        drop_pg(templates, url)


@pytest.fixture(scope="package", params=BACKENDS)
async def live_database(
    request: pytest.FixtureRequest, templates: Templates, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    url = await clone_database(str(request.param), templates, tmp_path_factory.mktemp("rtdb"))
    yield url
    drop_database(templates, url)


@pytest.fixture(scope="package")
def live(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("rt-live")
    with live_server(
        live_database, data_dir, JOBSERVER_DISCONNECT_GRACE_SECONDS=str(GRACE_SECONDS)
    ) as server:
        yield server


async def make_token(database_url: str, *, active: bool = True, role: str = "operator") -> str:
    """A fresh user (an operator unless `role` says otherwise) written straight to the live
    server's database, and a token for it (registering over HTTP costs two password
    hashes, seconds on a busy machine)."""
    engine = make_engine(database_url)
    user_id = uuid.uuid4()
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(User).values(
                    id=user_id,
                    email=f"{user_id.hex[:12]}@example.com",
                    hashed_password="-",
                    role=role,
                    is_superuser=role == "admin",
                    is_active=active,
                    is_verified=True,
                )
            )
    finally:
        await engine.dispose()
    return tokens.mint(user_id, TEST_SECRET, 3600)


@pytest.fixture
async def user_token(live_database: str) -> str:
    return await make_token(live_database)


@pytest.fixture
async def other_token(live_database: str) -> str:
    return await make_token(live_database)


@pytest.fixture
def room_id() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Recorder:
    """An AsyncClient that records every event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, object]] = []
        self._arrived = asyncio.Condition()
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: object) -> None:
        async with self._arrived:
            self.events.append((event, data))
            self._arrived.notify_all()

    async def wait(self, event: str, count: int = 1) -> list[object]:
        """The first `count` events of that name, waiting up to 5 s for them."""
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: len(self.named(event)) >= count)
        return self.named(event)

    def named(self, event: str) -> list[object]:
        return [data for name, data in self.events if name == event]


async def recorder(url: str, token: str, *rooms: str) -> Recorder:
    rec = Recorder()
    await rec.sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    for room in rooms:
        ack = await rec.sio.call("room_join", {"room_id": room}, timeout=10)
        assert ack == {"room_id": room}
    return rec


def register_job(url: str, token: str, room: str, name: str = "Echo") -> str:
    """Register `room:modifiers:name` over REST; returns the auto-created worker id."""
    response = httpx.put(
        f"{url}/v1/joblib/rooms/{room}/jobs",
        json={"category": "modifiers", "name": name, "schema_": {}},
        headers=headers(token),
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["worker_id"])


def submit(url: str, token: str, room: str, job: str, payload: dict[str, object]) -> str:
    response = httpx.post(
        f"{url}/v1/joblib/rooms/{room}/tasks/{job}",
        json={"payload": payload},
        headers=headers(token),
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def claim(url: str, token: str, worker_id: str) -> str | None:
    """Claim for the worker; the claimed task's id or None."""
    response = httpx.post(
        f"{url}/v1/joblib/tasks/claim", json={"worker_id": worker_id}, headers=headers(token)
    )
    assert response.status_code == 200, response.text
    task = response.json()["task"]
    return str(task["id"]) if task else None


def worker_exists(url: str, token: str, worker_id: str) -> bool:
    """Looked up in the list, not by heartbeat: a heartbeat would cancel the cleanup."""
    response = httpx.get(f"{url}/v1/joblib/workers?limit=500", headers=headers(token))
    assert response.status_code == 200, response.text
    return worker_id in {item["id"] for item in response.json()["items"]}


def heartbeat(url: str, token: str, worker_id: str) -> int:
    response = httpx.patch(f"{url}/v1/joblib/workers/{worker_id}", headers=headers(token))
    return response.status_code
