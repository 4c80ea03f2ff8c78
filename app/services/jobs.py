"""Jobs: registration (create, reactivate, idempotent), lookup, listing. The orphan rule
(soft-delete a job left without workers or pending tasks) runs inside the task store's
writes (db/store), where tasks end and workers go."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import insert_ignoring_conflicts
from app.db.models import Job, WorkerJob
from app.errors import Forbidden, InvalidCategory, JobNotFound, SchemaConflict
from app.services import payload_schemas, workers
from app.services.actors import Actor
from app.services.events import Event, JobsInvalidate
from app.services.pages import Page, PageRequest, fetch
from app.services.rooms import (
    SPECIAL_ROOMS,
    parse_full_name,
    validate_room_id,
    visible_job_rooms,
)

if TYPE_CHECKING:
    from app.services.tasks.service import TaskService


@dataclass(frozen=True)
class JobView:
    job: Job
    workers: list[uuid.UUID]
    worker_id: uuid.UUID | None = None


@dataclass(frozen=True)
class JobRegistration:
    category: str
    name: str
    schema: dict[str, Any]
    worker_id: uuid.UUID | None = None
    timeout_seconds: float | None = None
    # Beyond the contract: concurrency limits (None leaves the job's as they are).
    max_running: int | None = None
    max_running_per_key: int | None = None
    # Beyond the contract: check submits against the schema (None: leave as it is).
    validate_payload: bool | None = None

    def settings(self) -> dict[str, object]:
        return {
            "max_running": self.max_running,
            "max_running_per_key": self.max_running_per_key,
            "validate_payload": self.validate_payload,
        }


@dataclass(frozen=True)
class Registered:
    view: JobView
    created: bool
    events: list[Event]


async def register(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    spec: JobRegistration,
    allowed_categories: Sequence[str],
) -> Registered:
    """PUT /rooms/{room}/jobs, checks in the contract's order. Never commits."""
    validate_room_id(room_id)
    actor.require_writer()
    if room_id in SPECIAL_ROOMS and not actor.is_superuser:
        raise Forbidden("Admin required for @global/@internal job registration")
    if spec.category not in allowed_categories:
        raise InvalidCategory(
            f"Category '{spec.category}' not in allowed list: {list(allowed_categories)}"
        )
    if spec.validate_payload:
        payload_schemas.check_schema(spec.schema)
    job, created = await _upsert(session, actor, room_id, spec)
    worker = await workers.owned_or_new(session, actor, spec.worker_id)
    await insert_ignoring_conflicts(session, WorkerJob, {"worker_id": worker.id, "job_id": job.id})
    view = JobView(job, await worker_ids(session, job.id), worker.id)
    return Registered(view, created, [JobsInvalidate(room_id)])


async def _upsert(
    session: AsyncSession, actor: Actor, room_id: str, spec: JobRegistration
) -> tuple[Job, bool]:
    full_name = f"{room_id}:{spec.category}:{spec.name}"
    job = await by_full_name(session, full_name, lock=True)
    if job is None:
        inserted = await insert_ignoring_conflicts(
            session,
            Job,
            {
                "id": uuid.uuid4(),
                "room_id": room_id,
                "category": spec.category,
                "name": spec.name,
                "full_name": full_name,
                "schema_": spec.schema,
                "timeout_seconds": spec.timeout_seconds,
                "registered_by": actor.id,
                **{k: v for k, v in spec.settings().items() if v is not None},
            },
        )
        job = await by_full_name(session, full_name, lock=True)
        assert job is not None
        if inserted:
            return job, True
        # Lost a race with a concurrent first registration: treat it as existing.
    settles = may_configure(job, actor)
    if job.registered_by is None:
        # A job from before registrants were recorded: its next registrant claims it.
        job.registered_by = actor.id
    if job.deleted:
        job.deleted = False
        job.schema_ = spec.schema
        # Whether payloads are checked belongs with the schema, which is new here.
        job.validate_payload = bool(spec.validate_payload)
        if settles:
            job.timeout_seconds = spec.timeout_seconds
            configure(job, spec.settings(), settles=True)
        await session.flush()
        return job, True
    if job.schema_ != spec.schema:
        raise SchemaConflict(f"Schema mismatch for job '{full_name}'")
    configure(job, {"timeout_seconds": spec.timeout_seconds, **spec.settings()}, settles=settles)
    await session.flush()
    return job, False


def configure(job: Job, settings: dict[str, object], *, settles: bool) -> bool:
    """Apply the settings given (None: leave as is); True when one changed. A change by
    someone who may not configure the job is refused, whatever else the request did."""
    changed = False
    for name, value in settings.items():
        if value is None or getattr(job, name) == value:
            continue
        if not settles:
            raise Forbidden(
                f"Only the user who first registered job '{job.full_name}' (or an admin) may "
                f"change its {name}"
            )
        setattr(job, name, value)
        changed = True
    return changed


def has_limits(job: Job) -> bool:
    return job.max_running is not None or job.max_running_per_key is not None


async def count_claims_under_limits(tasks: TaskService, job: Job) -> None:
    """Tasks claimed before their job had limits count against them from now on (the
    leader's sweep would otherwise catch up only at its next pass)."""
    if has_limits(job):
        await tasks.store.count_active_under_limits()


def may_configure(job: Job, actor: Actor) -> bool:
    """Its first registrant or an admin sets a job's settings; so does anyone while
    nobody has claimed it (rows from before registrants were recorded)."""
    return actor.is_superuser or job.registered_by in (None, actor.id)


async def by_full_name(session: AsyncSession, full_name: str, *, lock: bool = False) -> Job | None:
    query = select(Job).where(Job.full_name == full_name)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def worker_ids(session: AsyncSession, job_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(
        select(WorkerJob.worker_id).where(WorkerJob.job_id == job_id).order_by(WorkerJob.worker_id)
    )
    return list(rows.scalars())


async def resolve(session: AsyncSession, job_name: str) -> Job:
    """The active job with this full name; 404 when malformed, absent or soft-deleted."""
    if parse_full_name(job_name) is None:
        raise JobNotFound(f"Invalid job name format: {job_name}")
    job = await by_full_name(session, job_name)
    if job is None or job.deleted:
        raise JobNotFound(f"Job '{job_name}' not found")
    return job


async def get(session: AsyncSession, room_id: str, job_name: str) -> JobView:
    """GET one job. [quirk] resolved by full name only, with no room visibility check."""
    validate_room_id(room_id)
    job = await resolve(session, job_name)
    return JobView(job, await worker_ids(session, job.id))


async def list_visible(session: AsyncSession, room_id: str, page: PageRequest) -> Page[JobView]:
    validate_room_id(room_id)
    query = (
        select(Job)
        .where(Job.room_id.in_(visible_job_rooms(room_id)), Job.deleted.is_(False))
        .order_by(Job.created_at.desc(), Job.id.desc())
    )
    rows, total = await fetch(session, query, page)
    jobs = [row[0] for row in rows]
    links = await _links(session, [job.id for job in jobs])
    items = [JobView(job, links.get(job.id, [])) for job in jobs]
    return Page(items, total, page.limit, page.offset)


async def list_active(session: AsyncSession, room_id: str | None = None) -> list[JobView]:
    """Every active job (of one room, if given), by full name: for the CLI."""
    query = select(Job).where(Job.deleted.is_(False)).order_by(Job.full_name)
    if room_id is not None:
        query = query.where(Job.room_id == room_id)
    found = list((await session.execute(query)).scalars())
    links = await _links(session, [job.id for job in found])
    return [JobView(job, links.get(job.id, [])) for job in found]


async def _links(
    session: AsyncSession, job_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    if not job_ids:
        return {}
    rows = await session.execute(
        select(WorkerJob.job_id, WorkerJob.worker_id)
        .where(WorkerJob.job_id.in_(job_ids))
        .order_by(WorkerJob.worker_id)
    )
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for job_id, worker_id in rows:
        out.setdefault(job_id, []).append(worker_id)
    return out
