"""@internal tasks through a Redis broker outage (issue 16): the broker is the machine's
Redis behind a TCP proxy, and nothing consumes the queue until a real `jobserver worker`
starts at the end, so the queue's list shows exactly what was sent.

A send that fails (a cut: refused at once; a hang: given up after the send timeout) leaves
its task `claimed`; the leader's repair pass sends it once after the grace period and then
backs off (each re-send doubles the wait), and the worker runs every task once however
often its message was sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.background.sweeper import redispatch_lost
from app.internal.broker_urls import QUEUE_NAME
from app.main import create_app
from app.settings import Settings
from app.state import Core
from tests.background.processes import start_worker, stop
from tests.conftest import headers_for, make_settings
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

MARK = "@internal:analysis:Mark"
ECHO = "@internal:modifiers:Echo"
EXTENSIONS = "app.internal.examples:Echo,tests.background.extensions:Mark"
GRACE = 1.0  # the repair pass's grace period; its first back-off is one grace too
TASKS = 3  # of each extension
# A generous bound on what a hung broker may cost one call (the send timeout is ~1 s).
HUNG_BOUND = 5.0
WORKER_WITHIN = 60.0  # to start a worker process and run every task


@dataclass
class Outage:
    """The in-process server whose broker is reached through `proxy`."""

    core: Core
    client: httpx.AsyncClient
    headers: dict[str, str]
    proxy: TcpProxy
    queue: Redis
    directory: Path

    @property
    def settings(self) -> Settings:
        return self.core.settings

    async def queued(self) -> Counter[str]:
        """How often each task's message is in the queue's list."""
        messages = await self.queue.lrange(QUEUE_NAME, 0, -1)
        return Counter(json.loads(message)["kwargs"]["task_id"] for message in messages)

    async def status(self, task_id: str) -> str:
        response = await self.client.get(f"/v1/joblib/tasks/{task_id}", headers=self.headers)
        return str(response.json()["status"])


@pytest.fixture
async def outage(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Outage]:
    redis = make_url(redis_url)
    with TcpProxy(redis.host or "127.0.0.1", redis.port or 6379) as proxy:
        broker_url = str(redis.set(port=proxy.port))
        settings = make_settings(
            database_url,
            tmp_path / "data",
            redis_url=redis_url,
            broker_url=broker_url,
            internal_extensions=EXTENSIONS,
            internal_dispatch_grace_seconds=GRACE,
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as client,
            Redis.from_url(redis_url) as queue,
        ):
            core: Core = app.state.core
            headers = await headers_for(client, core, "user@example.com", "operator")
            yield Outage(core, client, headers, proxy, queue, tmp_path)


async def submit(outage: Outage, job: str, payload: dict[str, Any]) -> tuple[str, float]:
    """The new task's id and how long its submit took."""
    started = time.perf_counter()
    response = await outage.client.post(
        f"/v1/joblib/rooms/r1/tasks/{job}", json={"payload": payload}, headers=outage.headers
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.text
    return str(response.json()["id"]), elapsed


async def repair(outage: Outage) -> list[str]:
    """One repair pass, as the leader's sweeper runs it."""
    return await redispatch_lost(outage.settings, outage.core.tasks, outage.core.publisher)


def worker_env(outage: Outage) -> dict[str, str]:
    settings = outage.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_")}
    env.update(
        JOBSERVER_DATABASE_URL=settings.effective_database_url,
        JOBSERVER_REDIS_URL=str(settings.redis_url),
        JOBSERVER_BROKER_URL=str(settings.broker_url),
        JOBSERVER_INTERNAL_EXTENSIONS=EXTENSIONS,
        JOBSERVER_DATA_DIR=str(outage.directory / "worker-data"),
        JOBSERVER_LOG_LEVEL="warning",
    )
    return env


async def run_worker(outage: Outage, ids: list[str]) -> dict[str, str]:
    """Start a `jobserver worker` on the queue; each task's final status once all ended."""
    started = time.perf_counter()
    with (outage.directory / "worker.log").open("ab") as log:
        worker = start_worker(worker_env(outage), log, "2")
        try:
            async with asyncio.timeout(WORKER_WITHIN):
                while True:
                    statuses = {task_id: await outage.status(task_id) for task_id in ids}
                    if not {"pending", "claimed", "running"} & set(statuses.values()):
                        break
                    await asyncio.sleep(0.2)
        finally:
            stop(worker, signal.SIGTERM)
    print(f"worker started and ended every task in {time.perf_counter() - started:.1f} s")
    return statuses


async def test_broker_outage_fails_no_internal_task_and_the_repair_pass_sends_each_once(
    outage: Outage,
) -> None:
    marks = outage.directory / "marks.log"
    await outage.queue.ping()
    outage.proxy.cut()
    submitted = [await submit(outage, MARK, {"path": str(marks)}) for _ in range(TASKS)]
    submitted += [await submit(outage, ECHO, {"message": str(n)}) for n in range(TASKS)]
    ids = [task_id for task_id, _ in submitted]
    print(f"\nsubmit during the outage: slowest {max(s for _, s in submitted):.3f} s")
    assert [await outage.status(task_id) for task_id in ids] == ["claimed"] * len(ids)
    assert await outage.queued() == Counter()

    outage.proxy.resume()
    assert await repair(outage) == []  # within the grace period: nothing is lost yet
    await asyncio.sleep(GRACE + 0.2)
    started = time.perf_counter()
    resent = await repair(outage)
    print(f"first repair pass: {time.perf_counter() - started:.3f} s")
    assert sorted(resent) == sorted(ids)
    assert await outage.queued() == Counter(ids)

    assert await repair(outage) == []  # backing off: no second copy right away
    assert await outage.queued() == Counter(ids)

    await asyncio.sleep(GRACE + 0.2)  # the first back-off is one grace period
    again = await repair(outage)
    assert Counter(again) <= Counter(ids)
    assert await repair(outage) == []  # the next back-off is two grace periods
    assert await outage.queued() == Counter(ids) + Counter(again)
    print(f"after one back-off: {len(again)} of {len(ids)} re-sent once more")

    statuses = await run_worker(outage, ids)
    assert statuses == dict.fromkeys(ids, "completed")
    marked = Counter(marks.read_text().split())
    assert marked == Counter(ids[:TASKS])  # each Mark task ran once


async def test_hung_broker_costs_a_submit_and_a_repair_pass_about_a_second_and_fails_nothing(
    outage: Outage,
) -> None:
    marks = outage.directory / "marks.log"
    await outage.queue.ping()
    outage.proxy.freeze()  # a silent network death: sends hang instead of being refused
    submitted = [await submit(outage, MARK, {"path": str(marks)}) for _ in range(TASKS)]
    ids = [task_id for task_id, _ in submitted]
    slowest = max(seconds for _, seconds in submitted)
    print(f"\nsubmit while the broker hangs: slowest {slowest:.3f} s")
    assert slowest < HUNG_BOUND
    assert [await outage.status(task_id) for task_id in ids] == ["claimed"] * len(ids)

    await asyncio.sleep(GRACE + 0.2)
    started = time.perf_counter()
    async with asyncio.timeout(HUNG_BOUND):  # the leader's sweep is not held up either
        assert sorted(await repair(outage)) == sorted(ids)
    print(f"repair pass while the broker hangs: {time.perf_counter() - started:.3f} s")
    assert [await outage.status(task_id) for task_id in ids] == ["claimed"] * len(ids)

    outage.proxy.resume()
    await asyncio.sleep(2 * GRACE + 0.2)  # past the back-off of the pass that timed out
    await repair(outage)
    print(f"queue after the network came back: {sorted((await outage.queued()).values())}")
    statuses = await run_worker(outage, ids)
    assert statuses == dict.fromkeys(ids, "completed")
    # Sends cut short by the timeout may still have reached the queue once the network
    # came back: the worker runs each task once all the same.
    assert Counter(marks.read_text().split()) == Counter(ids)
