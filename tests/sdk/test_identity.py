"""One worker id for the worker's life: a worker the server swept comes back with the same
id, registered once however many of its requests saw the 404, and no ghost is left when
it stops (both backends)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from jobserver_sdk import JobService, Worker

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, Count

pytestmark = pytest.mark.slow
WORKERS = "/v1/joblib/workers?limit=500"


async def listed(service: JobService) -> list[str]:
    body = await service.client.request("GET", WORKERS)
    return [w["id"] for w in body["items"]]


async def sweep(service: JobService, worker: Worker) -> int:
    """Delete the worker on the server as the sweeper would; the generation before."""
    seen = worker.identity.generation
    await service.client.request("DELETE", f"/v1/joblib/workers/{worker.worker_id}")
    return seen


async def test_swept_worker_comes_back_with_its_id_and_runs_new_tasks(
    server: Server, room: str
) -> None:
    tag = uuid.uuid4().hex
    async with JobService(server.url, server.token, room=room) as service:
        async with workers(server.url, server.token, room, [Count], heartbeat_seconds=0.2) as [
            worker
        ]:
            seen = await sweep(service, worker)
            async with asyncio.timeout(10):
                while True:
                    if worker.identity.generation > seen:
                        break
                    await asyncio.sleep(0.05)
            task = await service.submit(Count(tag=tag, n=1))
            assert await task.result(timeout=20) == 1
            assert task.info.worker_id == worker.worker_id
            assert (await listed(service)).count(str(worker.worker_id)) == 1
            assert worker.identity.generation == seen + 1
        assert str(worker.worker_id) not in await listed(service)  # no ghost after the stop
    assert EXECUTIONS[f"{tag}:1"] == 1


async def test_concurrent_404s_of_heartbeat_and_claims_register_the_worker_once(
    server: Server, room: str
) -> None:
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [Count], heartbeat_seconds=60) as [worker],
    ):
        seen = await sweep(service, worker)
        await asyncio.gather(
            asyncio.to_thread(worker.identity.beat),
            asyncio.to_thread(worker.identity.beat),
            *(worker._claim(1) for _ in range(3)),
        )
        assert worker.identity.generation == seen + 1
        mine = [w for w in await listed(service) if w == str(worker.worker_id)]
        assert mine == [str(worker.worker_id)]
        job = await service.client.request(
            "GET", f"/v1/joblib/rooms/{room}/jobs/{Count.full_name(room)}"
        )
        assert job["workers"] == [str(worker.worker_id)]
