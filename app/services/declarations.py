"""Declared jobs (beyond the contract): a job that exists without a worker, so tasks can be
submitted before one comes. A declaration keeps the job out of the orphan rule until the
declaration is deleted; registration by a worker of the same schema then serves it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import insert_ignoring_conflicts
from app.db.models import Job, Task, WorkerJob
from app.errors import Forbidden, InvalidCategory, JobNotFound, SchemaConflict
from app.services import jobs, payload_schemas
from app.services.actors import Actor
from app.services.events import Event, JobsInvalidate
from app.services.jobs import JobView
from app.services.rooms import INTERNAL_ROOM, SPECIAL_ROOMS, validate_room_id
from app.services.tasks.states import TaskStatus

# Tasks that keep a job alive after its declaration goes: the orphan rule's own list.
KEEPS_JOB = (TaskStatus.PENDING, TaskStatus.WAITING)


@dataclass(frozen=True)
class Declaration:
    """What a declaration sets; None leaves an existing job's value as it is."""

    category: str
    name: str
    schema: dict[str, Any]
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    priority: int | None = None
    max_running: int | None = None
    max_running_per_key: int | None = None
    validate_payload: bool | None = None

    def settings(self) -> dict[str, object]:
        """The job's columns this declaration sets."""
        return {
            "default_max_attempts": self.max_attempts,
            "default_priority": self.priority,
            "timeout_seconds": self.timeout_seconds,
            "max_running": self.max_running,
            "max_running_per_key": self.max_running_per_key,
            "validate_payload": self.validate_payload,
        }


@dataclass(frozen=True)
class Declared:
    view: JobView
    created: bool
    events: list[Event]


async def declare(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    spec: Declaration,
    allowed_categories: Sequence[str],
) -> Declared:
    """PUT /rooms/{room}/job-definitions: registration's checks in its order, then create,
    reactivate (a soft-deleted job takes the new schema) or confirm the job. Never commits."""
    validate_room_id(room_id)
    actor.require_writer()
    if room_id in SPECIAL_ROOMS and not actor.is_superuser:
        raise Forbidden("Admin required for @global/@internal job declaration")
    if room_id == INTERNAL_ROOM:
        raise Forbidden("The server declares its own @internal jobs")
    if spec.category not in allowed_categories:
        raise InvalidCategory(
            f"Category '{spec.category}' not in allowed list: {list(allowed_categories)}"
        )
    if spec.validate_payload:
        payload_schemas.check_schema(spec.schema)
    job, created = await _upsert(session, actor, room_id, spec)
    view = JobView(job, await jobs.worker_ids(session, job.id))
    return Declared(view, created, [JobsInvalidate(room_id)])


async def _upsert(
    session: AsyncSession, actor: Actor, room_id: str, spec: Declaration
) -> tuple[Job, bool]:
    full_name = f"{room_id}:{spec.category}:{spec.name}"
    settings = spec.settings()
    job = await jobs.by_full_name(session, full_name, lock=True)
    if job is None:
        values = {k: v for k, v in settings.items() if v is not None}
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
                "registered_by": actor.id,
                "declared": True,
                **values,
            },
        )
        job = await jobs.by_full_name(session, full_name, lock=True)
        assert job is not None
        if inserted:
            return job, True
        # Lost a race with a concurrent first declaration or registration: it exists.
    settles = jobs.may_configure(job, actor)
    reactivated = job.deleted
    if reactivated:
        # A job gone to the orphan rule is absent to everyone: declaring it brings it back.
        job.deleted = False
        job.schema_ = spec.schema
        job.declared = True
        job.validate_payload = bool(spec.validate_payload)
        jobs.configure(job, settings, settles=settles)
    else:
        if job.schema_ != spec.schema:
            raise SchemaConflict(f"Schema mismatch for job '{full_name}'")
        jobs.configure(job, {"declared": True, **settings}, settles=settles)
    if job.registered_by is None:
        job.registered_by = actor.id
    await session.flush()
    return job, reactivated


async def undeclare(
    session: AsyncSession, actor: Actor, room_id: str, category: str, name: str
) -> list[Event]:
    """DELETE /rooms/{room}/job-definitions/{category}/{name}: the job goes back to the
    orphan rule, and is soft-deleted at once when nothing keeps it. Never commits."""
    validate_room_id(room_id)
    actor.require_writer()
    full_name = f"{room_id}:{category}:{name}"
    job = await jobs.by_full_name(session, full_name, lock=True)
    if job is None or job.deleted or not job.declared:
        raise JobNotFound(f"No declared job '{full_name}'")
    if not jobs.may_configure(job, actor):
        raise Forbidden(
            f"Only the user who first registered job '{full_name}' (or an admin) may "
            "delete its declaration"
        )
    job.declared = False
    # Read after the row lock: a submit that committed meanwhile is seen (PostgreSQL reads
    # each statement's snapshot afresh), so its task keeps the job.
    if job.room_id != INTERNAL_ROOM and not await _kept(session, job.id):
        job.deleted = True
    await session.flush()
    return [JobsInvalidate(room_id)]


async def _kept(session: AsyncSession, job_id: uuid.UUID) -> bool:
    linked = exists().where(WorkerJob.job_id == job_id)
    queued = exists().where(Task.job_id == job_id, Task.status.in_([str(s) for s in KEEPS_JOB]))
    return bool((await session.execute(select(linked | queued))).scalar_one())
