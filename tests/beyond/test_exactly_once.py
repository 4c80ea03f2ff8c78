"""With retries on, concurrent workers still complete every task exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from app.services.actors import Actor
from app.services.tasks import claim as claims
from app.services.tasks import submit as submits
from app.services.tasks import transitions
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report
from app.services.tasks.submit import Submission, TaskOptions
from app.state import Core
from tests.factories import make_job, make_user, make_worker

TASKS = 30
WORKERS = 6
# Due again at once, so the retried attempts race the first ones.
NO_BACKOFF = RetryPolicy(base_seconds=0, max_seconds=0)


async def test_every_task_completes_exactly_once_with_retries_and_concurrent_workers(
    core: Core,
) -> None:
    async with core.sessionmaker() as session:
        user = await make_user(session)
        workers = [await make_worker(session, user) for _ in range(WORKERS)]
        job = await make_job(session, workers=tuple(workers))
        await session.commit()
        actor = Actor(user.id, "operator")
    store = core.store
    batch = [Submission({"i": i}, TaskOptions(max_attempts=3)) for i in range(TASKS)]
    await submits.submit(store, actor, "room1", job.full_name, batch, ())
    completions: Counter[str] = Counter()
    failed_once: set[str] = set()

    async def report(task_id: str, status: TaskStatus, error: str | None = None) -> None:
        await transitions.report(store, actor, Report(task_id, status, error), NO_BACKOFF)

    async def work(worker_id: uuid.UUID) -> None:
        while True:
            views, _ = await claims.claim(store, actor, worker_id, 1, 300)
            if not views:
                return
            task = views[0].task
            if task.attempt == 1 and task.payload_value()["i"] % 3 == 0:
                failed_once.add(task.id)
                await report(task.id, TaskStatus.FAILED, "flaky")
            else:
                await report(task.id, TaskStatus.RUNNING)
                await report(task.id, TaskStatus.COMPLETED)
                completions[task.id] += 1

    await asyncio.gather(*(work(w.id) for w in workers))
    assert len(completions) == TASKS
    assert set(completions.values()) == {1}
    assert len(failed_once) == TASKS // 3
