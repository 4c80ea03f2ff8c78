"""The trigger-kept counters (task_counts, task_throughput) agree with the tasks table
after every kind of write: submit (one and bulk), claim, reports (also re-queues), cancel,
retry, release, lost workers, expired leases, and rows written outside the task store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.models import Task, TaskThroughput
from app.services import stats
from app.state import Core
from tests.beyond.conftest import Api
from tests.factories import make_job, make_task


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"claim_lease_seconds": 0.05, "retry_backoff_base_seconds": 0}


async def actual(core: Core) -> dict[str, dict[str, int]]:
    async with core.sessionmaker() as session:
        rows = await session.execute(
            select(Task.job_name, Task.status, func.count()).group_by(Task.job_name, Task.status)
        )
    found: dict[str, dict[str, int]] = {}
    for job, status, n in rows.all():
        found.setdefault(job, {})[status] = int(n)
    return found


async def counted(core: Core) -> dict[str, dict[str, int]]:
    async with core.sessionmaker() as session:
        by_job = await stats.counts(session)
    return {job: {s: n for s, n in c.items() if n} for job, c in by_job.items()}


async def test_counts_agree_with_the_table_after_every_kind_of_write(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    other = await api.register(user_headers)
    for _ in range(6):
        assert (await api.submit(user_headers, max_attempts=2)).status_code == 202
    bulk = await api.client.post(
        "/v1/joblib/rooms/r1/tasks/r1:modifiers:Echo/bulk",
        json={"items": [{"payload": {"i": i}} for i in range(5)]},
        headers=user_headers,
    )
    assert bulk.status_code == 202
    claimed = [await api.claim(user_headers, worker) for _ in range(5)]
    done, failing, requeued, cancelled, kept = (t["id"] for t in claimed if t)
    for task_id in (done, failing, requeued):
        await api.patch(user_headers, task_id, status="running")
    await api.patch(user_headers, done, status="completed")
    await api.patch(user_headers, requeued, status="failed", error="again")  # attempts left
    await api.patch(user_headers, failing, status="failed", error="x")  # re-queued too
    await api.client.post(f"/v1/joblib/tasks/{cancelled}/cancel", headers=user_headers)
    await api.client.post(f"/v1/joblib/tasks/{cancelled}/retry", headers=user_headers)
    await api.client.post(
        f"/v1/joblib/tasks/{kept}/release",
        json={"worker_id": worker, "attempt": 1},
        headers=user_headers,
    )
    assert await api.claim(user_headers, other) is not None
    await asyncio.sleep(0.1)
    await core.tasks.expire_leases()
    await core.tasks.lose_workers([worker])
    async with core.sessionmaker() as session:  # a row written outside the task store
        job = await make_job(session, "r9")
        await make_task(session, job, status="completed")
        await session.commit()
    assert await counted(core) == await actual(core)


async def test_finished_tasks_are_counted_in_their_minute(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    for _ in range(3):
        await api.submit(user_headers)
    for status in ("completed", "failed", "cancelled"):
        task = await api.claim(user_headers, worker)
        assert task is not None
        if status == "completed":
            await api.patch(user_headers, task["id"], status="running")
        response = await api.patch(user_headers, task["id"], status=status)
        assert response.status_code == 200, response.text
    async with core.sessionmaker() as session:
        rows = await session.execute(
            select(TaskThroughput.status, func.sum(TaskThroughput.n)).group_by(
                TaskThroughput.status
            )
        )
        finished = {status: int(n) for status, n in rows.all()}
    assert finished == {"completed": 1, "failed": 1, "cancelled": 1}
