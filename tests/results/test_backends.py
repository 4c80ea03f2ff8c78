"""The ResultBackend protocol (BACKGROUND.md §3), on the in-memory and the Redis backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.results import MemoryResultBackend, RedisResultBackend, ResultBackend
from tests.conftest import REDIS_URL

KEY = "provider-result:@global:fs:local:abc"
LOCK = "provider-inflight:@global:fs:local:abc"


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("redis_url")  # flushed test db, or skip/fail per conftest
    return str(request.param)


@pytest.fixture
async def redis_client(kind: str) -> AsyncIterator[Redis | None]:
    if kind == "memory":
        yield None
        return
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _open(client: Redis | None) -> ResultBackend:
    backend: ResultBackend = MemoryResultBackend() if client is None else RedisResultBackend(client)
    await backend.start()
    return backend


@pytest.fixture
async def results(redis_client: Redis | None) -> AsyncIterator[ResultBackend]:
    backend = await _open(redis_client)
    yield backend
    await backend.close()


async def test_store_get_delete_round_trip_bytes_verbatim(results: ResultBackend) -> None:
    data = bytes(range(256))
    await results.store(KEY, data, 60)
    assert await results.get(KEY) == data
    await results.delete(KEY)
    assert await results.get(KEY) is None


async def test_stored_value_expires_after_its_ttl(results: ResultBackend) -> None:
    await results.store(KEY, b"x", 1)
    await asyncio.sleep(1.2)
    assert await results.get(KEY) is None


async def test_acquire_inflight_is_exclusive_until_released(results: ResultBackend) -> None:
    assert await results.acquire_inflight(LOCK, 30)
    assert not await results.acquire_inflight(LOCK, 30)
    await results.release_inflight(LOCK)
    assert await results.acquire_inflight(LOCK, 30)


async def test_inflight_lock_expires_after_its_ttl(results: ResultBackend) -> None:
    assert await results.acquire_inflight(LOCK, 1)
    await asyncio.sleep(1.2)
    assert await results.acquire_inflight(LOCK, 1)


async def test_concurrent_acquires_grant_the_lock_once(results: ResultBackend) -> None:
    won = await asyncio.gather(*(results.acquire_inflight(LOCK, 30) for _ in range(20)))
    assert won.count(True) == 1


async def test_wait_returns_a_value_already_there(results: ResultBackend) -> None:
    await results.store(KEY, b"ready", 60)
    assert await results.wait_for_key(KEY, 5) == b"ready"


async def test_wait_with_zero_timeout_checks_once(results: ResultBackend) -> None:
    assert await results.wait_for_key(KEY, 0) is None


async def test_wait_times_out_with_none(results: ResultBackend) -> None:
    assert await results.wait_for_key(KEY, 0.3) is None


async def test_notify_wakes_a_waiter_with_the_stored_value(results: ResultBackend) -> None:
    waiter = asyncio.create_task(results.wait_for_key(KEY, 10))
    await asyncio.sleep(0.05)
    await results.store(KEY, b"late", 60)
    await results.notify_key(KEY)
    assert await asyncio.wait_for(waiter, 5) == b"late"


async def test_wait_racing_store_and_notify_never_misses_the_value(
    results: ResultBackend,
) -> None:
    async def upload(key: str, delay: float) -> None:
        await asyncio.sleep(delay)  # shifts the upload across the waiter's check
        await results.store(key, b"v", 60)
        await results.notify_key(key)

    # A lost wake-up would only be noticed at the waiter's deadline (60 s): the outer
    # bound, far above any real latency, turns that into a failure instead.
    for i in range(40):
        key = f"{KEY}:{i}"
        got, _ = await asyncio.wait_for(
            asyncio.gather(results.wait_for_key(key, 60), upload(key, i * 0.0001)), 10
        )
        assert got == b"v"


async def test_redis_notify_from_another_replica_wakes_the_waiter(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    here, there = RedisResultBackend(client), RedisResultBackend(client)
    await here.start()
    await there.start()
    try:
        waiter = asyncio.create_task(here.wait_for_key(KEY, 10))
        await asyncio.sleep(0.05)
        await there.store(KEY, b"from-there", 60)
        await there.notify_key(KEY)
        assert await asyncio.wait_for(waiter, 5) == b"from-there"
    finally:
        await here.close()
        await there.close()
        await client.aclose()
