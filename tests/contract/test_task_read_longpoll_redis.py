"""The long-poll wake-up bound again, with the Redis pub/sub notifier (REDIS_URL set)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from app.notify import TaskWaiters
from app.realtime.fanout import Fanout
from app.state import Core
from tests.contract.conftest import JOBLIB, Headers, claimed, patch, registered_worker, submitted

WAKE_BOUND_SECONDS = 0.2


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    return {"redis_url": redis_url, "long_poll_max_wait_seconds": 3}


async def test_long_poll_wakes_under_200_ms_through_the_redis_fanout(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    assert core.publisher.fanout.redis is not None
    worker_id = await registered_worker(client, user_headers)
    await submitted(client, user_headers)
    task_id = await claimed(client, user_headers, worker_id)
    await patch(client, user_headers, task_id, "running")
    poll = asyncio.create_task(
        client.get(f"{JOBLIB}/tasks/{task_id}", headers={**user_headers, "Prefer": "wait=3"})
    )
    await asyncio.sleep(0.2)
    assert not poll.done()
    await patch(client, user_headers, task_id, "completed")
    committed = time.monotonic()
    response = await asyncio.wait_for(poll, 3)
    woke_after = time.monotonic() - committed
    assert response.json()["status"] == "completed"
    assert woke_after < WAKE_BOUND_SECONDS, f"long-poll woke {woke_after * 1000:.0f} ms late"


async def test_fanout_wakes_a_waiter_on_another_replica(redis_url: str) -> None:
    from redis.asyncio import Redis

    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    waiters = TaskWaiters()
    here, there = Fanout(waiters, None, clients[0]), Fanout(TaskWaiters(), None, clients[1])
    await here.start()
    await there.start()
    try:
        task_id = str(uuid.uuid4())
        with waiters.watch(task_id) as woke:
            started = time.monotonic()
            await there.deliver([], [task_id])
            await asyncio.wait_for(woke.wait(), 1)
            assert time.monotonic() - started < WAKE_BOUND_SECONDS
    finally:
        for fanout in (here, there):
            await fanout.stop()
        for c in clients:
            await c.aclose()
