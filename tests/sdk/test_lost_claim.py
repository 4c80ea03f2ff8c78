"""A claim whose HTTP answer is lost strands nothing (issue 16), end to end: a worker's
claim is applied by the live server but answered 500 by a proxy on the way back, and that
worker keeps heartbeating. The leader's own sweep returns the task to the queue when the
claim lease (5 s here) runs out, and an SDK worker woken by it runs the task once; the
stranded claim's reports are refused (both backends).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from jobserver_sdk import JobService

from tests.sdk.conftest import FAST_LOOPS, Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, Count
from tests.sdk.proxy import faulty_proxy

pytestmark = pytest.mark.slow

LEASE_SECONDS = float(FAST_LOOPS["JOBSERVER_CLAIM_LEASE_SECONDS"])
HEARTBEAT_SECONDS = 1.0
JOBLIB = "/v1/joblib"


def single_claim(method: str, path: str, _body: bytes) -> bool:
    return method == "POST" and path == f"{JOBLIB}/tasks/claim"


@contextlib.asynccontextmanager
async def heartbeating(client: httpx.AsyncClient, worker_id: str) -> AsyncIterator[None]:
    """The worker that lost its claim stays alive, as the issue's worker did."""

    async def beat() -> None:
        while True:
            response = await client.patch(f"{JOBLIB}/workers/{worker_id}")
            assert response.status_code == 200, response.text
            await asyncio.sleep(HEARTBEAT_SECONDS)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def register(client: httpx.AsyncClient, room: str) -> str:
    worker_id = str((await client.post(f"{JOBLIB}/workers")).json()["id"])
    body = {**Count.registration(), "worker_id": worker_id}
    response = await client.put(f"{JOBLIB}/rooms/{room}/jobs", json=body)
    assert response.status_code in (200, 201), response.text
    return worker_id


async def test_a_claim_whose_answer_was_lost_is_run_by_another_worker_after_the_lease(
    server: Server, room: str
) -> None:
    tag = uuid.uuid4().hex
    async with (
        faulty_proxy(server.url, single_claim, apply_first=True) as proxy,
        httpx.AsyncClient(
            base_url=proxy.url, headers={"Authorization": f"Bearer {server.token}"}
        ) as stranded,
        JobService(server.url, server.token, room=room) as service,
    ):
        worker_id = await register(stranded, room)
        async with heartbeating(stranded, worker_id):
            task = await service.submit(Count(tag=tag, n=1), max_attempts=1)
            lost = await stranded.post(f"{JOBLIB}/tasks/claim", json={"worker_id": worker_id})
            lost_at = time.perf_counter()
            assert (lost.status_code, proxy.tripped) == (500, 1)
            held = await task.refresh()
            assert (held.status, str(held.worker_id)) == ("claimed", worker_id)
            async with workers(server.url, server.token, room, [Count]) as [other]:
                assert await task.result(timeout=4 * LEASE_SECONDS) == 1
                ran_after = time.perf_counter() - lost_at
                print(f"\nrun by another worker {ran_after:.2f} s after the lost claim")
            stale = await stranded.patch(
                f"{JOBLIB}/tasks/{task.id}",
                json={"status": "running", "attempt": 1, "worker_id": worker_id},
            )
    assert stale.status_code == 409, stale.text
    assert stale.json()["type"].endswith("stale-attempt")
    assert (task.info.attempt, task.info.worker_id) == (2, other.worker_id)
    assert EXECUTIONS[f"{tag}:1"] == 1
