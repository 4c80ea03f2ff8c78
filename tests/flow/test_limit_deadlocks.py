"""A statement of the PostgreSQL store that loses a deadlock is sent again. Claims lock
their limited jobs' rows in id order, but another transaction (a report's counter
trigger, here a plain one) may hold them in the other order."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.db.asyncpg_args import asyncpg_connect_args
from app.db.models import WorkerJob
from app.services.actors import Actor
from app.state import Core
from tests.factories import make_job, make_user, make_worker
from tests.flow.limits import set_limits, submit_keys

# The other side waits longer before it checks for a deadlock, so the claim is the one
# PostgreSQL rolls back (the claim's session keeps the 1 s default).
PATIENT = "10s"


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def test_a_claim_that_loses_a_deadlock_is_sent_again(core: Core) -> None:
    async with core.sessionmaker() as session:
        user = await make_user(session)
        worker = await make_worker(session, user)
        jobs = sorted([await make_job(session, name=n) for n in ("A", "B")], key=lambda j: j.id)
        for job in jobs:
            session.add(WorkerJob(worker_id=worker.id, job_id=job.id))
        await session.commit()
    actor = Actor(user.id, "operator")
    first, second = jobs
    for job in jobs:
        await set_limits(core, job.id, max_running=1)
        await submit_keys(core, actor, job.full_name, [None])
    other = await asyncpg.connect(**asyncpg_connect_args(core.settings.database_url))
    try:
        await other.execute(f"SET deadlock_timeout = '{PATIENT}'")
        transaction = other.transaction()
        await transaction.start()
        await other.execute("UPDATE jobs SET active = active WHERE id = $1", second.id)
        claim = asyncio.create_task(core.tasks.claim(actor, worker.id, 2))
        await asyncio.sleep(0.5)  # the claim holds the first job and waits for the second
        await other.execute("UPDATE jobs SET active = active WHERE id = $1", first.id)
        await transaction.commit()
        claimed = await asyncio.wait_for(claim, 30)
    finally:
        await other.close()
    assert sorted(v.task.job_name for v in claimed) == [first.full_name, second.full_name]
