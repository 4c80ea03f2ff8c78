"""End to end: zndraw-joblib's own Provider classes, served by a JobManager over Socket.IO,
answer provider reads made over REST against a live server (in-memory and Redis cache)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import socketio
from zndraw_joblib.client import JobManager
from zndraw_joblib.provider import Provider
from zndraw_socketio import wrap

from tests.live import ApiManager, LiveServer, live_server

pytestmark = pytest.mark.slow

CONNECT_TIMEOUT = 10
FILES = {"/data": ["a", "b"], "/ünï": {"k": 1}}
BLOB = bytes(range(256)) * 16 + b"\x00\r\n\xff"


class FileRead(Provider):
    category: ClassVar[str] = "filesystem"
    path: str

    def read(self, handler: Any) -> Any:
        return handler[self.path]


class FrameRead(Provider):
    category: ClassVar[str] = "frames"
    content_type: ClassVar[str] = "application/octet-stream"
    index: int

    def read(self, handler: Any) -> Any:
        return BLOB[: self.index]


@pytest.fixture(params=["memory", "redis"])
def cache_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "redis":
        return {"JOBSERVER_REDIS_URL": request.getfixturevalue("redis_url")}
    return {}


@pytest.fixture
def live(database_url: str, tmp_path: Path, cache_env: dict[str, str]) -> Iterator[LiveServer]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with live_server(database_url, data_dir, **cache_env) as server:
        yield server


@pytest.fixture
def serving(live: LiveServer) -> Iterator[str]:
    """A JobManager serving both providers in room r1; yields the user's token."""
    token = live.register_user("provider@example.com")
    sio = socketio.Client()
    sio.connect(live.url, auth={"token": token}, wait_timeout=CONNECT_TIMEOUT)
    api = ApiManager(live.url, token)
    manager = JobManager(api, wrap(sio), heartbeat_interval=60.0)
    try:
        manager.register_provider(FileRead, name="local", handler=FILES, room="r1")
        manager.register_provider(FrameRead, name="blob", handler=None, room="r1")
        time.sleep(0.3)  # join_provider_room is a fire-and-forget emit
        yield token
    finally:
        manager.disconnect()
        sio.disconnect()
        api.close()


def read(live: LiveServer, token: str, provider: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{live.url}/v1/joblib/rooms/r1/providers/{provider}",
        params=params,
        headers={"Authorization": f"Bearer {token}", "Prefer": "wait=15"},
        timeout=30,
    )


def test_job_manager_provider_answers_reads_end_to_end(live: LiveServer, serving: str) -> None:
    for path, expected in FILES.items():
        response = read(live, serving, "r1:filesystem:local", path=path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json() == expected
        assert response.headers["preference-applied"] == "wait=15"
    binary = read(live, serving, "r1:frames:blob", index="4100")
    assert binary.status_code == 200, binary.text
    assert binary.headers["content-type"] == "application/octet-stream"
    assert binary.content == BLOB[:4100]
    cached = read(live, serving, "r1:frames:blob", index="4100")
    assert cached.content == BLOB[:4100]
    assert "preference-applied" not in cached.headers  # a cache hit answers at once
