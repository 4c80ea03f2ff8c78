"""Concurrency limits (issue 19, item 4): a job's `max_running` caps its claimed and
running tasks across all workers; its `max_running_per_key` caps them per task
`concurrency_key`. Enforced in the claim; the limits are set in the database here (the
job declaration that sets them is another feature's)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import update

from app.background.sweeper import count_active_under_limits
from app.db.models import Job, WorkerJob
from app.services.actors import Actor
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report
from app.state import Core
from tests.beyond.conftest import JOB
from tests.beyond.fenced import claim_batch, create_worker, link, submit
from tests.factories import make_job
from tests.flow.limits import counters, job_id_of, set_limits, setup, submit_keys


async def _worker(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    worker_id = str(uuid.uuid4())
    assert (await create_worker(client, headers, worker_id)).status_code == 201
    await link(client, headers, worker_id)
    return worker_id


async def _batch(
    client: httpx.AsyncClient, headers: dict[str, str], worker_id: str, limit: int
) -> list[dict[str, Any]]:
    response = await claim_batch(client, headers, worker_id, limit)
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


async def _claim_keys(core: Core, actor: Actor, worker_id: uuid.UUID, limit: int = 1) -> list[Any]:
    return [v.task.concurrency_key for v in await core.tasks.claim(actor, worker_id, limit)]


def _on_postgres(core: Core) -> bool:
    return core.settings.database_url.startswith("postgresql")


async def test_a_batch_claim_admits_at_most_max_running(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    worker = await _worker(client, user_headers)
    await set_limits(core, await job_id_of(core, JOB), max_running=3)
    for _ in range(10):
        await submit(client, user_headers)
    assert len(await _batch(client, user_headers, worker, 10)) == 3
    assert await _batch(client, user_headers, worker, 10) == []


async def test_claims_of_other_workers_share_the_limit(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    first, second = await _worker(client, user_headers), await _worker(client, user_headers)
    await set_limits(core, await job_id_of(core, JOB), max_running=2)
    for _ in range(5):
        await submit(client, user_headers)
    assert len(await _batch(client, user_headers, first, 1)) == 1
    assert len(await _batch(client, user_headers, second, 5)) == 1
    assert await _batch(client, user_headers, first, 5) == []


async def test_a_finished_task_frees_its_place(core: Core) -> None:
    actor, [worker], job_id, job_name = await setup(core, 1)
    await set_limits(core, job_id, max_running=1)
    await submit_keys(core, actor, job_name, [None, None])
    [held] = await core.tasks.claim(actor, worker, 5)
    assert await core.tasks.claim(actor, worker, 5) == []
    await core.tasks.report(actor, Report(held.task.id, TaskStatus.RUNNING))
    await core.tasks.report(actor, Report(held.task.id, TaskStatus.COMPLETED))
    assert len(await core.tasks.claim(actor, worker, 5)) == 1


async def test_a_task_requeued_by_a_lost_worker_frees_its_place(core: Core) -> None:
    actor, [lost, other], job_id, job_name = await setup(core, 2)
    await set_limits(core, job_id, max_running=1)
    await submit_keys(core, actor, job_name, [None, None])
    assert len(await core.tasks.claim(actor, lost, 1)) == 1
    assert await core.tasks.claim(actor, other, 1) == []
    await core.tasks.lose_workers([lost])
    assert len(await core.tasks.claim(actor, other, 1)) == 1
    if _on_postgres(core):
        assert (await counters(core, job_id))[0] == 1


async def test_a_full_key_does_not_stop_other_keys(core: Core) -> None:
    actor, [worker], job_id, job_name = await setup(core, 1)
    await set_limits(core, job_id, max_running_per_key=1)
    await submit_keys(core, actor, job_name, ["a", "a", "a", "b"])
    assert await _claim_keys(core, actor, worker) == ["a"]
    assert await _claim_keys(core, actor, worker) == ["b"]
    assert await _claim_keys(core, actor, worker) == []


async def test_a_batch_claim_takes_at_most_max_running_per_key_of_each_key(core: Core) -> None:
    actor, [worker], job_id, job_name = await setup(core, 1)
    await set_limits(core, job_id, max_running_per_key=2)
    await submit_keys(core, actor, job_name, ["a", "b"] * 5)
    assert sorted(await _claim_keys(core, actor, worker, 10)) == ["a", "a", "b", "b"]
    assert await _claim_keys(core, actor, worker, 10) == []
    if _on_postgres(core):
        assert await counters(core, job_id) == (4, {"a": 2, "b": 2})


async def test_tasks_without_a_key_are_only_subject_to_max_running(core: Core) -> None:
    actor, [worker], job_id, job_name = await setup(core, 1)
    await set_limits(core, job_id, max_running=4, max_running_per_key=1)
    await submit_keys(core, actor, job_name, [None, None, None, "a", "a"])
    assert Counter(await _claim_keys(core, actor, worker, 10)) == {None: 3, "a": 1}


async def test_a_job_without_limits_is_not_held_back_by_a_limited_one(core: Core) -> None:
    actor, [worker], limited_id, limited_name = await setup(core, 1)
    async with core.sessionmaker() as session:
        free = await make_job(session, name="Free")
        session.add(WorkerJob(worker_id=worker, job_id=free.id))
        await session.commit()
    await set_limits(core, limited_id, max_running=1)
    await submit_keys(core, actor, limited_name, [None] * 5)
    await submit_keys(core, actor, free.full_name, [None] * 5)
    claimed = await core.tasks.claim(actor, worker, 20)
    names = sorted(v.task.job_name for v in claimed)
    assert names == [limited_name] + [free.full_name] * 5


async def test_limits_set_on_a_job_with_running_tasks_count_them_after_a_sweep(
    core: Core,
) -> None:
    actor, [worker], job_id, job_name = await setup(core, 1)
    await submit_keys(core, actor, job_name, [None] * 6)
    assert len(await core.tasks.claim(actor, worker, 3)) == 3
    await set_limits(core, job_id, max_running=3)
    counted = await count_active_under_limits(core.tasks)
    assert await core.tasks.claim(actor, worker, 3) == []
    if _on_postgres(core):
        assert counted == 3
        assert (await counters(core, job_id))[0] == 3
        assert await count_active_under_limits(core.tasks) == 0


async def test_a_paused_job_with_limits_is_not_claimed(core: Core) -> None:
    actor, [worker], job_id, job_name = await setup(core, 1)
    await set_limits(core, job_id, max_running=2)
    await submit_keys(core, actor, job_name, [None])
    async with core.sessionmaker() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(paused=True))
        await session.commit()
    assert await core.tasks.claim(actor, worker, 5) == []
