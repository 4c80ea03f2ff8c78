"""The stop begins before uvicorn drains (app/lifecycle.py): long-polls and provider reads
answer at once, and sockets closing because we stop clean up no worker."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.db.models import Worker
from app.realtime.presence import Presence
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    claimed,
    get_task,
    registered_worker,
    submitted,
)

GRACE_SECONDS = 0.3
PAST_GRACE_SECONDS = GRACE_SECONDS + 0.7
ANSWER_WITHIN_SECONDS = 2.0
OPEN_SECONDS = 0.3  # long enough for a request to be waiting on the server


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "long_poll_max_wait_seconds": 60,
        "provider_long_poll_max_seconds": 60,
        "disconnect_grace_seconds": GRACE_SECONDS,
    }


def _presence(core: Core) -> Presence:
    assert core.presence is not None
    return core.presence


def _long_poll(
    client: httpx.AsyncClient, headers: Headers, task_id: str
) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(
        client.get(f"{JOBLIB}/tasks/{task_id}", headers={**headers, "Prefer": "wait=60"})
    )


async def _worker_exists(core: Core, worker_id: uuid.UUID) -> bool:
    async with core.sessionmaker() as session:
        return await session.get(Worker, worker_id) is not None


@dataclass(frozen=True)
class HeldClaim:
    """A claimed task whose worker's socket is held (presence), as a live worker's is."""

    worker_id: uuid.UUID
    task_id: str
    presence: Presence


@pytest.fixture
async def held(client: httpx.AsyncClient, user_headers: Headers, core: Core) -> HeldClaim:
    worker_id = uuid.UUID(await registered_worker(client, user_headers))
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, str(worker_id))
    presence = _presence(core)
    await presence.hold("sid-1", worker_id)
    return HeldClaim(worker_id, task_id, presence)


async def test_long_poll_open_when_the_stop_begins_answers_200_at_once(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    poll = _long_poll(client, user_headers, task_id)
    await asyncio.sleep(OPEN_SECONDS)
    assert not poll.done()
    core.lifecycle.stop()
    response = await asyncio.wait_for(poll, ANSWER_WITHIN_SECONDS)
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (task_id, "pending")
    assert response.headers["Preference-Applied"] == "wait=60"


async def test_long_poll_arriving_while_stopping_is_not_held(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    core.lifecycle.stop()
    response = await asyncio.wait_for(_long_poll(client, user_headers, task_id), 2)
    assert (response.status_code, response.json()["status"]) == (200, "pending")


async def test_provider_read_waiting_when_the_stop_begins_gets_504_with_retry_after(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    registered = await client.put(
        f"{JOBLIB}/rooms/r1/providers",
        json={"category": "filesystem", "name": "local", "schema_": {}},
        headers=user_headers,
    )
    assert registered.status_code == 201, registered.text
    read = asyncio.create_task(
        client.get(
            f"{JOBLIB}/rooms/r1/providers/r1:filesystem:local",
            params={"path": "/"},
            headers={**user_headers, "Prefer": "wait=60"},
        )
    )
    await asyncio.sleep(OPEN_SECONDS)
    assert not read.done()
    core.lifecycle.stop()
    response = await asyncio.wait_for(read, ANSWER_WITHIN_SECONDS)
    assert response.status_code == 504
    assert response.headers["Retry-After"] == "2"
    assert response.json()["type"] == "/v1/problems/provider-timeout"


async def test_disconnect_while_stopping_schedules_no_cleanup(
    client: httpx.AsyncClient, user_headers: Headers, core: Core, held: HeldClaim
) -> None:
    core.lifecycle.stop()
    await held.presence.release("sid-1")
    assert not held.presence.pending(held.worker_id)
    await asyncio.sleep(PAST_GRACE_SECONDS)
    assert await _worker_exists(core, held.worker_id)
    assert (await get_task(client, user_headers, held.task_id))["status"] == "claimed"


async def test_cleanup_pending_when_the_stop_begins_is_dropped_not_run(
    client: httpx.AsyncClient, user_headers: Headers, core: Core, held: HeldClaim
) -> None:
    await held.presence.release("sid-1")
    assert held.presence.pending(held.worker_id)
    core.lifecycle.stop()
    await asyncio.sleep(PAST_GRACE_SECONDS)
    assert not held.presence.pending(held.worker_id)
    assert await _worker_exists(core, held.worker_id)
    assert (await get_task(client, user_headers, held.task_id))["status"] == "claimed"


async def test_without_a_stop_the_disconnect_cleanup_still_runs(
    client: httpx.AsyncClient, user_headers: Headers, core: Core, held: HeldClaim
) -> None:
    """The counterpart of the two above: the grace timer itself still works."""
    await held.presence.release("sid-1")
    await asyncio.sleep(PAST_GRACE_SECONDS)
    assert not await _worker_exists(core, held.worker_id)
    assert (await get_task(client, user_headers, held.task_id))["status"] == "failed"
