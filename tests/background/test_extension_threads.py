"""Blocking extensions run on threads of their own (JOBSERVER_INTERNAL_THREADS), never on
asyncio's default pool, which the rest of the server (dashboard sign-in) relies on."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db.models import Task
from app.internal.threads import THREAD_PREFIX, ExtensionThreads
from app.main import create_app
from app.settings import Settings
from app.state import Core
from tests.background.extensions import Blocker
from tests.background.test_internal import submit, wait_terminal
from tests.conftest import headers_for
from tests.dashboard.conftest import PASSWORD, dashboard_login
from tests.factories import make_user

BLOCKER = "@internal:analysis:Blocker"
THREADS = 2
# What asyncio's default pool holds on this machine (ThreadPoolExecutor's default size).
DEFAULT_POOL = min(32, (os.cpu_count() or 1) + 4)
PROMPTLY = 5.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "internal_extensions": "tests.background.extensions:Blocker",
        "internal_threads": THREADS,
    }


@pytest.fixture(autouse=True)
def blockers() -> Iterator[None]:
    Blocker.started.clear()
    Blocker.release.clear()
    yield
    Blocker.release.set()


async def until_started(count: int) -> None:
    """Waits (on the event loop, not on a thread) until `count` blockers hold a thread."""
    async with asyncio.timeout(PROMPTLY):
        while len(Blocker.started) < count:  # noqa: ASYNC110  # the threads set no asyncio event
            await asyncio.sleep(0.01)


async def statuses(core: Core, ids: list[str]) -> list[str]:
    async with core.sessionmaker() as session:
        rows = await session.execute(select(Task.id, Task.status))
        found = {str(task_id): status for task_id, status in rows.all()}
    return [found[task_id] for task_id in ids]


async def test_busy_extensions_leave_the_default_thread_pool_free(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core, app: Any
) -> None:
    async with core.sessionmaker() as session:
        await make_user(session, "signer@example.com", role="viewer", password=PASSWORD)
        await session.commit()
    for _ in range(DEFAULT_POOL + 1):
        await submit(client, user_headers, BLOCKER, {})
    await until_started(THREADS)

    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(loop.run_in_executor(None, threading.get_ident), PROMPTLY)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    async with http:
        signed_in = await asyncio.wait_for(
            dashboard_login(http, "signer@example.com", PASSWORD), PROMPTLY
        )
    assert signed_in.status_code == 303, signed_in.text


async def test_at_most_internal_threads_extensions_run_and_the_rest_wait_claimed(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    ids = [await submit(client, user_headers, BLOCKER, {}) for _ in range(THREADS + 2)]
    await until_started(THREADS)
    # The tasks behind them have not started: they wait for a thread, still `claimed`.
    await asyncio.sleep(0.2)
    assert len(Blocker.started) == THREADS
    assert sorted(await statuses(core, ids)) == ["claimed"] * 2 + ["running"] * THREADS

    Blocker.release.set()
    for task_id in ids:
        assert (await wait_terminal(client, user_headers, task_id))["status"] == "completed"


def extension_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


async def test_stopping_the_server_ends_its_extension_threads(settings: Settings) -> None:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        core: Core = application.state.core
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = await headers_for(client, core, "user@example.com", "operator")
            task_id = await submit(client, headers, BLOCKER, {})
            await until_started(1)
            Blocker.release.set()
            assert (await wait_terminal(client, headers, task_id))["status"] == "completed"
        threads = extension_threads()
        assert threads, "the extension ran on none of the extension threads"
    for thread in threads:
        thread.join(PROMPTLY)
    assert [thread.name for thread in threads if thread.is_alive()] == []


async def test_extension_threads_are_daemons_so_a_stuck_extension_cannot_hold_the_exit() -> None:
    pool = ExtensionThreads(1)
    stuck = threading.Event()
    running = pool.run(stuck.wait)
    task = asyncio.ensure_future(running)
    async with asyncio.timeout(PROMPTLY):
        while not extension_threads():  # noqa: ASYNC110  # the thread sets no asyncio event
            await asyncio.sleep(0.01)
    assert all(thread.daemon for thread in extension_threads())
    pool.shutdown()
    stuck.set()
    await task
