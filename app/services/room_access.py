"""Who may join which Socket.IO room (EVENTS.md "Rooms").

A room's events carry other users' data (a provider request's parameters, a task's id),
so joins are judged here rather than honoured blindly:

* `room:@internal` and the job and provider rooms of `@internal`: admins only.
* `jobs:{job}`: a socket whose user owns the named worker and that worker serves the job
  (is linked to it); admins may join any.
* `providers:{provider}`: a socket whose user owns the named worker and the provider;
  admins may join any.

The zndraw-joblib client joins right after its registration answered (the link and the
provider exist by then) and joins again on every reconnect with the same worker, so its
joins pass. Joins are rare (per registration and reconnect), so each may read the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Provider, Worker, WorkerJob
from app.errors import Forbidden, JobserverError
from app.services import users
from app.services.actors import Actor
from app.services.rooms import INTERNAL_ROOM, parse_full_name


@dataclass(frozen=True, slots=True)
class Decision:
    """A join's outcome: the refusal (None: allowed) and whether the socket holds the
    worker (only its owner's socket does: disconnect cleanup must not touch others')."""

    refusal: JobserverError | None
    holds_worker: bool = False


def _refused(detail: str) -> Decision:
    return Decision(Forbidden(detail))


def _internal(full_name: str) -> bool:
    parsed = parse_full_name(full_name)
    return parsed is not None and parsed.room_id == INTERNAL_ROOM


async def actor(session: AsyncSession, user_id: object) -> Actor | None:
    """The socket's user as it is now (role changes apply to the next join)."""
    try:
        key = uuid.UUID(str(user_id))
    except ValueError:
        return None
    user = await users.get_active(session, key)
    return users.actor_of(user) if user is not None else None


def room_join(who: Actor, room_id: str) -> JobserverError | None:
    """`room_join` of a validated room id: everyone but for `@internal`."""
    if room_id == INTERNAL_ROOM and not who.is_superuser:
        return Forbidden("Admin required to watch room '@internal'")
    return None


async def _own_worker(session: AsyncSession, who: Actor, worker_id: uuid.UUID) -> bool:
    owner = await session.scalar(select(Worker.user_id).where(Worker.id == worker_id))
    return owner is not None and owner == who.id


async def _gate(
    session: AsyncSession, who: Actor, kind: str, full_name: str, worker_id: uuid.UUID
) -> Decision | None:
    """What job and provider rooms share: `@internal` for admins, admins admitted (holding
    the worker only when it is theirs), others only with a worker of their own. None: the
    caller's own worker, still to be checked against the job or provider."""
    if _internal(full_name) and not who.is_superuser:
        return _refused(f"Admin required to join the room of an @internal {kind}")
    own = await _own_worker(session, who, worker_id)
    if who.is_superuser:
        return Decision(None, own)
    if not own:
        return _refused(f"Worker '{worker_id}' is not yours")
    return None


async def job_room_join(
    session: AsyncSession, who: Actor, job_name: str, worker_id: uuid.UUID
) -> Decision:
    if (decided := await _gate(session, who, "job", job_name, worker_id)) is not None:
        return decided
    serves = await session.scalar(
        select(WorkerJob.worker_id)
        .join(Job, Job.id == WorkerJob.job_id)
        .where(WorkerJob.worker_id == worker_id, Job.full_name == job_name)
    )
    if serves is None:
        return _refused(f"Worker '{worker_id}' does not serve job '{job_name}'")
    return Decision(None, True)


async def provider_room_join(
    session: AsyncSession, who: Actor, provider_name: str, worker_id: uuid.UUID
) -> Decision:
    if (decided := await _gate(session, who, "provider", provider_name, worker_id)) is not None:
        return decided
    owner = await session.scalar(
        select(Provider.user_id).where(Provider.full_name == provider_name)
    )
    if owner is None or owner != who.id:
        return _refused(f"Provider '{provider_name}' is not yours")
    return Decision(None, True)
