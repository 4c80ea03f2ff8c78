"""A live `jobserver serve` per module and backend for the SDK tests (Socket.IO needs a real
socket), with the background loops tuned fast so delays, retries and sweeps show quickly."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import BACKENDS, Templates, clone_pg, drop_pg
from tests.live import LiveServer, live_server

FAST_LOOPS = {
    "JOBSERVER_SWEEPER_INTERVAL_SECONDS": "0.5",
    "JOBSERVER_SCHEDULER_INTERVAL_SECONDS": "0.2",
    "JOBSERVER_RETRY_BACKOFF_BASE_SECONDS": "0.1",
    "JOBSERVER_RETRY_BACKOFF_MAX_SECONDS": "0.5",
    "JOBSERVER_TASK_TIMEOUT_GRACE_SECONDS": "1",
    # A claim whose answer is lost (a server killed mid-request) comes back this fast.
    "JOBSERVER_CLAIM_LEASE_SECONDS": "5",
}


@dataclass
class Server:
    live: LiveServer
    token: str
    database_url: str

    @property
    def url(self) -> str:
        return self.live.url


@pytest.fixture(scope="module", params=BACKENDS)
def sdk_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def module_database(
    sdk_backend: str, templates: Templates, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One database per module and backend, cloned from the migrated template."""
    if sdk_backend == "sqlite":
        assert templates.sqlite_file is not None
        target = tmp_path_factory.mktemp("sdk-db") / "jobserver.db"
        shutil.copyfile(templates.sqlite_file, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = await clone_pg(templates)
    try:
        yield url
    finally:
        drop_pg(templates, url)


@pytest.fixture(scope="module")
def server(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("sdk-server")
    with live_server(module_database, data_dir, **FAST_LOOPS) as live:
        yield Server(live, live.token(), module_database)


@pytest.fixture
def room() -> str:
    """A room of its own per test, so tests sharing a server never see each other's jobs."""
    return f"sdk{uuid.uuid4().hex[:10]}"
