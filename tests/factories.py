"""Small async factories for rows the tests need; each flushes, none commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Task, User, Worker, WorkerJob
from app.services import users
from app.services.tasks.fingerprints import fingerprint_of


async def make_user(
    session: AsyncSession,
    email: str | None = None,
    *,
    role: str = "operator",
    password: str = "password",
) -> User:
    return await users.create(
        session, email or f"{uuid.uuid4().hex[:8]}@example.com", password, role=role
    )


async def make_worker(session: AsyncSession, user: User) -> Worker:
    worker = Worker(id=uuid.uuid4(), user_id=user.id)
    session.add(worker)
    await session.flush()
    return worker


async def make_job(
    session: AsyncSession,
    room_id: str = "room1",
    category: str = "modifiers",
    name: str = "Echo",
    *,
    workers: tuple[Worker, ...] = (),
    schema: dict[str, Any] | None = None,
) -> Job:
    job = Job(
        id=uuid.uuid4(),
        room_id=room_id,
        category=category,
        name=name,
        full_name=f"{room_id}:{category}:{name}",
        schema_=schema or {},
    )
    session.add(job)
    await session.flush()
    for worker in workers:
        session.add(WorkerJob(worker_id=worker.id, job_id=job.id))
    await session.flush()
    return job


async def make_task(
    session: AsyncSession,
    job: Job,
    *,
    room_id: str | None = None,
    status: str = "pending",
    **values: Any,
) -> Task:
    if status == "failed":
        # As the task store would have written it (it fingerprints every failure).
        values.setdefault(
            "error_fingerprint", fingerprint_of(values.get("error"), values.get("traceback"))
        )
    task = Task(
        id=uuid.uuid4(),
        job_id=job.id,
        job_name=job.full_name,
        room_id=room_id or job.room_id,
        status=status,
        payload=values.pop("payload", {}),
        internal=job.room_id == "@internal",
        **values,
    )
    session.add(task)
    await session.flush()
    await session.refresh(task)
    return task


def failed_rows(job: Job, errors: Iterable[str], **values: Any) -> list[Task]:
    """Failed tasks of `job`, one per error, for a single bulk flush (thousands of rows
    without a round trip each); `values` sets further columns on all of them."""
    return [
        Task(
            id=uuid.uuid4(),
            job_id=job.id,
            job_name=job.full_name,
            room_id=job.room_id,
            status="failed",
            payload={},
            error=error,
            **values,
        )
        for error in errors
    ]
