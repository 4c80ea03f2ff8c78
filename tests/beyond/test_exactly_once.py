"""With retries on, concurrent workers still complete every task exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from app.services import tasks
from app.services.actors import Actor
from app.services.retry import RetryPolicy
from app.services.states import TaskStatus
from app.services.task_options import TaskOptions
from app.services.tasks import Submission
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
        for i in range(TASKS):
            await tasks.submit(
                session,
                actor,
                "room1",
                job.full_name,
                Submission({"i": i}, TaskOptions(max_attempts=3)),
                (),
            )
        await session.commit()
    completions: Counter[uuid.UUID] = Counter()
    failed_once: set[uuid.UUID] = set()

    async def work(worker_id: uuid.UUID) -> None:
        while True:
            async with core.sessionmaker() as session:
                view, _ = await tasks.claim(session, actor, worker_id)
                await session.commit()
                if view is None:
                    return
                task = view.task
                if task.attempt == 1 and task.payload["i"] % 3 == 0:
                    failed_once.add(task.id)
                    await tasks.update_status(
                        session, actor, task.id, TaskStatus.FAILED, "flaky", retry=NO_BACKOFF
                    )
                else:
                    await tasks.update_status(session, actor, task.id, TaskStatus.RUNNING)
                    await tasks.update_status(session, actor, task.id, TaskStatus.COMPLETED)
                    completions[task.id] += 1
                await session.commit()

    await asyncio.gather(*(work(w.id) for w in workers))
    assert len(completions) == TASKS
    assert set(completions.values()) == {1}
    assert len(failed_once) == TASKS // 3
