"""Two `jobserver serve` replicas sharing PostgreSQL and Redis (DESIGN: scale beyond one
machine): Socket.IO fan-out, long-poll wake-ups and disconnect grace work across them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import REDIS_URL, Templates, _service_missing
from tests.live import LiveServer, live_server
from tests.realtime.conftest import (
    GRACE_SECONDS,
    clone_database,
    drop_database,
    headers,
    make_token,
    register_job,
    submit,
    worker_exists,
)
from tests.realtime.test_events import worker_socket
from tests.realtime.test_job_manager import PUSH_DEADLINE
from tests.realtime.workers import served_worker

Replicas = tuple[LiveServer, LiveServer]


@pytest.fixture(scope="module")
async def shared_database(
    templates: Templates, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        _service_missing("Redis", f"{type(exc).__name__}: {exc}")
    finally:
        await client.aclose()
    url = await clone_database("postgresql", templates, tmp_path_factory.mktemp("rep"))
    yield url
    drop_database(templates, url)


@pytest.fixture(scope="module")
def replicas(shared_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    env = {
        "JOBSERVER_REDIS_URL": REDIS_URL,
        "JOBSERVER_DISCONNECT_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    with (
        live_server(shared_database, tmp_path_factory.mktemp("replica-a"), **env) as a,
        live_server(shared_database, tmp_path_factory.mktemp("replica-b"), **env) as b,
    ):
        yield a, b


@pytest.fixture
async def token(shared_database: str) -> str:
    return await make_token(shared_database)


def test_worker_on_one_replica_gets_task_available_for_a_submit_on_the_other(
    replicas: Replicas, token: str, room_id: str
) -> None:
    a, b = replicas
    job = f"{room_id}:modifiers:Echo"
    with served_worker(a.url, token, room_id) as worker:
        task_id = submit(b.url, token, room_id, job, {"x": 1})
        assert worker.next_executed(PUSH_DEADLINE) == task_id


async def test_long_poll_on_one_replica_wakes_for_a_completion_on_the_other(
    replicas: Replicas, token: str, room_id: str
) -> None:
    a, b = replicas
    worker_id = register_job(b.url, token, room_id)
    task_id = submit(b.url, token, room_id, f"{room_id}:modifiers:Echo", {})
    async with (
        httpx.AsyncClient(base_url=a.url, headers=headers(token), timeout=60) as on_a,
        httpx.AsyncClient(base_url=b.url, headers=headers(token)) as on_b,
    ):
        waiting = asyncio.create_task(
            on_a.get(f"/v1/joblib/tasks/{task_id}", headers={"Prefer": "wait=30"})
        )
        await asyncio.sleep(0.5)  # the long-poll is parked on replica A
        assert not waiting.done()
        started = time.monotonic()
        claimed = await on_b.post("/v1/joblib/tasks/claim", json={"worker_id": worker_id})
        assert claimed.json()["task"]["id"] == task_id
        for status in ("running", "completed"):
            await on_b.patch(f"/v1/joblib/tasks/{task_id}", json={"status": status})
        answer = await asyncio.wait_for(waiting, timeout=10)
        assert answer.json()["status"] == "completed"
        assert time.monotonic() - started < 10  # woken, not timed out after 30 s


async def test_rejoin_on_another_replica_cancels_the_cleanup(
    replicas: Replicas, token: str, room_id: str
) -> None:
    a, b = replicas
    worker_id = register_job(a.url, token, room_id)
    job = f"{room_id}:modifiers:Echo"
    on_a = await worker_socket(a.url, token, job, worker_id)
    on_b = await worker_socket(b.url, token, job, worker_id)
    try:
        await on_a.sio.disconnect()
        await asyncio.sleep(GRACE_SECONDS + 1.5)
        assert worker_exists(b.url, token, worker_id)
    finally:
        await on_b.sio.disconnect()


async def test_disconnect_cleanup_still_runs_with_redis(
    replicas: Replicas, token: str, room_id: str
) -> None:
    a, _ = replicas
    worker_id = register_job(a.url, token, room_id)
    sock = await worker_socket(a.url, token, f"{room_id}:modifiers:Echo", worker_id)
    await sock.sio.disconnect()
    await asyncio.sleep(GRACE_SECONDS + 1.5)
    assert not worker_exists(a.url, token, worker_id)
