"""A hung Redis (issue 16): a live `jobserver serve` whose Redis is a private `redis-server`
that the test SIGSTOPs, so every connection to it stays open and silent. Requests go on
at their usual pace (Redis calls on the request path are bounded; the fan-out sends in the
background), and /ready keeps the replica in the load balancer, saying Redis is degraded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.live import LiveServer, free_port, live_server
from tests.realtime.conftest import headers, make_token

pytestmark = pytest.mark.slow

WARM_UP_ROUNDS = 3
HUNG_ROUNDS = 50
# What a hung Redis may cost one request: its calls time out after about 1 s.
REQUEST_BOUND = 1.5
# Spread the cycles over several Redis timeouts, so the fan-out's sends to the stopped
# Redis time out (and reconnect) while requests are being served.
CYCLE_PAUSE = 0.1
REDIS_START_SECONDS = 10.0
JOB = "modifiers:Echo"
READY = {"status": "ready", "database": "ok"}


@dataclass
class PrivateRedis:
    process: subprocess.Popen[bytes]
    url: str

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own on a free port (never the machine's Redis, which
    other tests share)."""
    port = free_port()
    with (tmp_path / "redis.log").open("ab") as log:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    redis = PrivateRedis(process, f"redis://127.0.0.1:{port}/0")
    try:
        wait_for_redis(redis.url)
        yield redis
    finally:
        redis.signal(signal.SIGCONT)  # a stopped process acts on SIGTERM only after this
        process.terminate()
        process.wait(timeout=10)


def wait_for_redis(url: str) -> None:
    deadline = time.monotonic() + REDIS_START_SECONDS
    with SyncRedis.from_url(url) as redis:
        while True:
            try:
                redis.ping()
                return
            except RedisConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def live(private_redis: PrivateRedis, database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(
        database_url,
        tmp_path,
        JOBSERVER_REDIS_URL=private_redis.url,
        JOBSERVER_BROKER_URL="memory://",
        JOBSERVER_INTERNAL_EXTENSIONS="",
    ) as server:
        yield server


@dataclass
class Cycles:
    """A worker's REST calls, each timed by path."""

    client: httpx.AsyncClient
    room: str
    worker_id: str = ""
    seconds: dict[str, list[float]] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)

    async def call(self, name: str, method: str, path: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        response = await self.client.request(method, path, **kwargs)
        self.seconds.setdefault(name, []).append(time.perf_counter() - started)
        self.statuses.append(response.status_code)
        assert response.is_success, response.text
        return response.json()

    async def register(self) -> None:
        body = {"category": "modifiers", "name": "Echo", "schema_": {}}
        created = await self.call(
            "register", "PUT", f"/v1/joblib/rooms/{self.room}/jobs", json=body
        )
        self.worker_id = str(created["worker_id"])

    async def cycle(self, n: int) -> None:
        """Submit one task, claim it, report it running, then completed."""
        path = f"/v1/joblib/rooms/{self.room}/tasks/{self.room}:{JOB}"
        submitted = await self.call("submit", "POST", path, json={"payload": {"n": n}})
        body = {"worker_id": self.worker_id}
        claimed = await self.call("claim", "POST", "/v1/joblib/tasks/claim", json=body)
        assert claimed["task"]["id"] == submitted["id"]
        task = f"/v1/joblib/tasks/{submitted['id']}"
        await self.call("running", "PATCH", task, json={"status": "running"})
        await self.call("completed", "PATCH", task, json={"status": "completed", "result": n})


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    response = await client.get("/ready")
    return response.status_code, response.json(), time.perf_counter() - started


async def test_hung_redis_costs_no_request_more_than_a_second_and_ready_stays_200(
    live: LiveServer,
    private_redis: PrivateRedis,
    database_url: str,
) -> None:
    token = await make_token(database_url)
    room = f"hang{uuid.uuid4().hex[:8]}"
    wakeups: list[float] = []
    socket = socketio.AsyncClient(reconnection=False)
    socket.on("task_available", lambda _data: wakeups.append(time.perf_counter()))
    async with httpx.AsyncClient(base_url=live.url, headers=headers(token), timeout=30) as client:
        cycles = Cycles(client, room)
        await cycles.register()
        await socket.connect(live.url, auth={"token": token}, transports=["websocket"])
        try:
            join = {"job_name": f"{room}:{JOB}", "worker_id": cycles.worker_id}
            await socket.call("join_job_room", join, timeout=10)
            for n in range(WARM_UP_ROUNDS):
                await cycles.cycle(n)
            assert (await ready(client))[:2] == (
                200,
                {"status": "ready", "database": "ok", "redis": "ok"},
            )

            private_redis.signal(signal.SIGSTOP)
            cycles.seconds.clear()
            hung_at = time.perf_counter()
            for n in range(HUNG_ROUNDS):
                await cycles.cycle(n)
                await asyncio.sleep(CYCLE_PAUSE)
            hung_for = time.perf_counter() - hung_at
            status, body, ready_seconds = await ready(client)
            woken = sum(1 for at in wakeups if at >= hung_at)
        finally:
            private_redis.signal(signal.SIGCONT)
            await socket.disconnect()

    claims = cycles.seconds["claim"]
    p99 = statistics.quantiles(claims, n=100)[98]
    slowest = {name: max(times) for name, times in cycles.seconds.items()}
    print(
        f"\n{HUNG_ROUNDS} cycles with Redis stopped: {hung_for:.2f} s; claim p50 "
        f"{statistics.median(claims) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; slowest "
        + ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in slowest.items())
        + f"; /ready {ready_seconds * 1000:.0f} ms; task_available seen {woken}"
    )
    assert p99 < REQUEST_BOUND
    assert max(slowest.values()) < REQUEST_BOUND
    assert all(200 <= code < 300 for code in cycles.statuses)
    assert (status, body) == (200, {**READY, "redis": "degraded"})
    assert woken > 0  # this replica's own sockets are served without Redis
    assert "could not send" in live.log()  # the fan-out did meet the stopped Redis
