"""Workers: create, heartbeat, list, and the cleanup cascade shared by DELETE, sweeper and
socket disconnect."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Provider, Worker, WorkerJob
from app.db.types import utcnow
from app.errors import Forbidden, WorkerNotFound
from app.services import jobs as jobs_service
from app.services import retries
from app.services.actors import Actor
from app.services.events import Event, JobsInvalidate, ProvidersInvalidate
from app.services.pages import Page, PageRequest, fetch
from app.services.retry import RetryPolicy
from app.services.rooms import validate_room_id, visible_job_rooms

WORKER_DISCONNECTED = "Worker disconnected"


@dataclass(frozen=True)
class WorkerSummary:
    worker: Worker
    job_count: int


async def create(session: AsyncSession, actor: Actor) -> Worker:
    """A new worker owned by the caller, heartbeat = creation time. Never commits."""
    actor.require_writer()
    worker = Worker(id=uuid.uuid4(), user_id=actor.id)
    session.add(worker)
    await session.flush()
    await session.refresh(worker)
    return worker


async def _owned(
    session: AsyncSession, actor: Actor, worker_id: uuid.UUID, *, admin_ok: bool
) -> Worker:
    worker = await session.get(Worker, worker_id)
    if worker is None:
        raise WorkerNotFound(f"Worker '{worker_id}' not found")
    if worker.user_id != actor.id and not (admin_ok and actor.is_superuser):
        raise Forbidden("Worker belongs to different user")
    return worker


async def heartbeat(session: AsyncSession, actor: Actor, worker_id: uuid.UUID) -> Worker:
    """Refresh last_heartbeat. Only the owner may: no superuser bypass (REST.md)."""
    await _owned(session, actor, worker_id, admin_ok=False)
    actor.require_writer()
    result = await session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(last_heartbeat=utcnow())
        .returning(Worker)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def delete_one(
    session: AsyncSession,
    actor: Actor,
    worker_id: uuid.UUID,
    retry: RetryPolicy = retries.DEFAULT_POLICY,
) -> list[Event]:
    """DELETE /workers/{id}: owner or superuser; runs the cleanup cascade."""
    await _owned(session, actor, worker_id, admin_ok=True)
    actor.require_writer()
    return await cleanup(session, [worker_id], retry)


async def cleanup(
    session: AsyncSession,
    worker_ids: Sequence[uuid.UUID],
    retry: RetryPolicy = retries.DEFAULT_POLICY,
) -> list[Event]:
    """The worker cleanup cascade (REST.md, DELETE /workers). Runs in the caller's
    transaction and returns every event to emit after commit."""
    if not worker_ids:
        return []
    ids = list(worker_ids)
    events: list[Event] = []
    # Beyond the contract: tasks with attempts left go back to pending instead of failing.
    events.extend(await retries.fail_lost_tasks(session, ids, WORKER_DISCONNECTED, retry))
    linked = (
        await session.execute(
            select(Job.id, Job.room_id)
            .join(WorkerJob, WorkerJob.job_id == Job.id)
            .where(WorkerJob.worker_id.in_(ids))
        )
    ).all()
    provider_rooms = await session.execute(
        delete(Provider).where(Provider.worker_id.in_(ids)).returning(Provider.room_id)
    )
    events.extend(ProvidersInvalidate(room) for room in sorted(set(provider_rooms.scalars())))
    await session.execute(delete(WorkerJob).where(WorkerJob.worker_id.in_(ids)))
    await session.execute(delete(Worker).where(Worker.id.in_(ids)))
    events.extend(JobsInvalidate(room) for room in sorted({room for _, room in linked}))
    events.extend(await jobs_service.soft_delete_orphans(session, [job_id for job_id, _ in linked]))
    return events


def _summary_query() -> object:
    job_count = (
        select(func.count())
        .where(WorkerJob.worker_id == Worker.id)
        .correlate(Worker)
        .scalar_subquery()
    )
    return select(Worker, job_count.label("job_count")).order_by(
        Worker.created_at.desc(), Worker.id.desc()
    )


async def list_all(session: AsyncSession, page: PageRequest) -> Page[WorkerSummary]:
    query = _summary_query()
    rows, total = await fetch(session, query, page)  # type: ignore[arg-type]
    return Page([WorkerSummary(w, n) for w, n in rows], total, page.limit, page.offset)


async def list_for_room(
    session: AsyncSession, room_id: str, page: PageRequest
) -> Page[WorkerSummary]:
    """Distinct workers linked to the non-deleted jobs visible from the room."""
    validate_room_id(room_id)
    visible = (
        select(WorkerJob.worker_id)
        .join(Job, Job.id == WorkerJob.job_id)
        .where(Job.room_id.in_(visible_job_rooms(room_id)), Job.deleted.is_(False))
    )
    query = _summary_query().where(Worker.id.in_(visible))  # type: ignore[attr-defined]
    rows, total = await fetch(session, query, page)
    return Page([WorkerSummary(w, n) for w, n in rows], total, page.limit, page.offset)
