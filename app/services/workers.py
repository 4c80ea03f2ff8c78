"""Workers: create, the delete check, lists. Heartbeats and the cleanup cascade (DELETE,
sweeper, socket disconnect) go through the task store (services/tasks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Worker, WorkerJob
from app.db.types import utcnow
from app.errors import Forbidden, WorkerNotFound
from app.services.actors import Actor
from app.services.pages import Page, PageRequest, fetch
from app.services.rooms import validate_room_id, visible_job_rooms


@dataclass(frozen=True)
class WorkerSummary:
    worker: Worker
    job_count: int


async def create(
    session: AsyncSession, actor: Actor, worker_id: uuid.UUID | None = None
) -> tuple[Worker, bool]:
    """A worker owned by the caller, heartbeat = now; True when it is new. Never commits.

    Beyond the contract, the caller may name the id: a worker keeps one id for its life
    and re-creates itself with it after being swept. The caller's own existing worker of
    that id is refreshed instead; another user's is 403."""
    actor.require_writer()
    if worker_id is not None:
        existing = await session.get(Worker, worker_id)
        if existing is not None:
            if existing.user_id != actor.id:
                raise Forbidden("Worker belongs to different user")
            existing.last_heartbeat = utcnow()
            await session.flush()
            await session.refresh(existing)
            return existing, False
    worker = Worker(id=worker_id or uuid.uuid4(), user_id=actor.id)
    session.add(worker)
    await session.flush()
    await session.refresh(worker)
    return worker, True


async def owned_or_new(session: AsyncSession, actor: Actor, worker_id: uuid.UUID | None) -> Worker:
    """For a job or provider registration (REST.md): the given worker if the caller owns
    it (else 404, even for another user's), or, without an id, a new one for the caller."""
    if worker_id is None:
        created, _ = await create(session, actor)
        return created
    worker = await session.get(Worker, worker_id)
    if worker is None or worker.user_id != actor.id:
        raise WorkerNotFound(f"Worker '{worker_id}' not found or not owned by user")
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


async def check_deletable(session: AsyncSession, actor: Actor, worker_id: uuid.UUID) -> None:
    """DELETE /workers/{id}: 404 unless it exists; its owner or a superuser only."""
    await _owned(session, actor, worker_id, admin_ok=True)
    actor.require_writer()


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
