"""Schedules as users manage them: create, list, read, change, delete. Never commits.

Who may do what: anyone signed in reads; writers (not viewers) create; only the creator
or an admin changes or deletes. The job is resolved as a submit resolves it (room id
valid, job exists and is not deleted; a declared job without workers is fine).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, Schedule
from app.db.types import utcnow
from app.errors import Forbidden, ScheduleNotFound
from app.services import jobs, payload_schemas
from app.services.actors import Actor
from app.services.json_limits import JsonLimits
from app.services.pages import Page, PageRequest, fetch
from app.services.rooms import validate_room_id
from app.services.schedules.rules import Rule, rule_of


@dataclass(frozen=True)
class ScheduleSpec:
    """A new schedule: what to submit, where, and when."""

    job_name: str
    room_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    timezone: str = "UTC"
    every_seconds: float | None = None
    enabled: bool = True
    catch_up: bool = False
    priority: int | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class ScheduleChange:
    """A PATCH: only the fields named in `given` change (a given None clears)."""

    given: frozenset[str]
    enabled: bool | None = None
    cron: str | None = None
    timezone: str | None = None
    every_seconds: float | None = None
    payload: dict[str, Any] | None = None
    catch_up: bool | None = None
    priority: int | None = None
    max_attempts: int | None = None


# Everything, for the CLI's listing.
ALL = PageRequest(limit=1_000_000)
RULE_FIELDS = frozenset({"cron", "timezone", "every_seconds"})
PLAIN_FIELDS = ("payload", "catch_up", "priority", "max_attempts")
# A given None clears these; the others cannot be empty, so None leaves them as they are.
CLEARABLE = frozenset({"priority", "max_attempts"})


async def database_now(session: AsyncSession) -> datetime:
    """Fire times count from the database's clock, the one the leader's passes read."""
    now = await session.scalar(select(utcnow()))
    assert now is not None
    return now


async def create(
    session: AsyncSession, actor: Actor, spec: ScheduleSpec, limits: JsonLimits
) -> Schedule:
    actor.require_writer()
    validate_room_id(spec.room_id)
    job = await jobs.resolve(session, spec.job_name)
    rule = rule_of(spec.cron, spec.timezone, spec.every_seconds)
    limits.payload(spec.payload)
    _check_payload(job, spec.payload)
    now = await database_now(session)
    schedule = Schedule(
        id=uuid.uuid4(),
        job_name=spec.job_name,
        room_id=spec.room_id,
        payload=spec.payload,
        cron=rule.cron,
        timezone=rule.timezone,
        every_seconds=rule.every_seconds,
        enabled=spec.enabled,
        catch_up=spec.catch_up,
        priority=spec.priority,
        max_attempts=spec.max_attempts,
        next_fire_at=rule.first_after(now) if spec.enabled else None,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(schedule)
    await session.flush()
    return schedule


async def list_schedules(
    session: AsyncSession, page: PageRequest, job_name: str | None, room_id: str | None
) -> Page[Schedule]:
    query = select(Schedule).order_by(Schedule.created_at.desc(), Schedule.id.desc())
    if job_name is not None:
        query = query.where(Schedule.job_name == job_name)
    if room_id is not None:
        query = query.where(Schedule.room_id == room_id)
    rows, total = await fetch(session, query, page)
    return Page([row[0] for row in rows], total, page.limit, page.offset)


def describe(schedule: Schedule) -> str:
    """One tab-separated line: id, job, room, rule, state, next fire time."""
    rule = (
        f"cron {schedule.cron} ({schedule.timezone})"
        if schedule.cron is not None
        else f"every {schedule.every_seconds:g}s"
    )
    state = "enabled" if schedule.enabled else "disabled"
    next_at = schedule.next_fire_at.isoformat() if schedule.next_fire_at else "-"
    return "\t".join([str(schedule.id), schedule.job_name, schedule.room_id, rule, state, next_at])


async def get(session: AsyncSession, schedule_id: uuid.UUID) -> Schedule:
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(f"Schedule '{schedule_id}' not found")
    return schedule


async def _owned(session: AsyncSession, actor: Actor, schedule_id: uuid.UUID) -> Schedule:
    actor.require_writer()
    schedule = await get(session, schedule_id)
    if not actor.is_superuser and schedule.created_by != actor.id:
        raise Forbidden("Only the schedule's creator (or an admin) may change it")
    return schedule


async def update(
    session: AsyncSession,
    actor: Actor,
    schedule_id: uuid.UUID,
    change: ScheduleChange,
    limits: JsonLimits,
) -> Schedule:
    """A changed rule, or re-enabling, restarts the fire times from now; disabling clears
    `next_fire_at` (nothing is due while disabled)."""
    schedule = await _owned(session, actor, schedule_id)
    rule = _changed_rule(schedule, change)
    if change.payload is not None:
        limits.payload(change.payload)
        job = await jobs.by_full_name(session, schedule.job_name)
        if job is not None and not job.deleted:
            _check_payload(job, change.payload)
    for name in PLAIN_FIELDS:
        value = getattr(change, name)
        if name in change.given and (value is not None or name in CLEARABLE):
            setattr(schedule, name, value)
    enabling = change.enabled is True and not schedule.enabled
    if change.enabled is not None:
        schedule.enabled = change.enabled
    now = await database_now(session)
    if not schedule.enabled:
        schedule.next_fire_at = None
    elif rule is not None or enabling or schedule.next_fire_at is None:
        rule = rule or rule_of(schedule.cron, schedule.timezone, schedule.every_seconds)
        schedule.next_fire_at = rule.first_after(now)
    if rule is not None:
        schedule.cron, schedule.timezone = rule.cron, rule.timezone
        schedule.every_seconds = rule.every_seconds
    schedule.updated_at = now
    await session.flush()
    return schedule


def _check_payload(job: Job, payload: dict[str, Any]) -> None:
    """A schedule's payload is checked as its submits will be (a job that validates
    would refuse every fire of a payload that does not match)."""
    if job.validate_payload:
        payload_schemas.compiled(job.schema_).check([("/payload", payload)])


def _changed_rule(schedule: Schedule, change: ScheduleChange) -> Rule | None:
    """The new rule when the change names any of its fields: a new `cron` replaces
    `every_seconds` and the other way round; naming both is refused by rule_of."""
    named = change.given & RULE_FIELDS
    if not named:
        return None
    current = Rule(schedule.cron, schedule.timezone, schedule.every_seconds)
    if "cron" in named and change.cron is not None:
        current = replace(current, cron=change.cron, every_seconds=None)
    if "every_seconds" in named and change.every_seconds is not None:
        current = replace(current, every_seconds=change.every_seconds)
        if "cron" not in named or change.cron is None:
            current = replace(current, cron=None)
    if change.timezone is not None:
        current = replace(current, timezone=change.timezone)
    return rule_of(current.cron, current.timezone, current.every_seconds)


async def delete(session: AsyncSession, actor: Actor, schedule_id: uuid.UUID) -> None:
    schedule = await _owned(session, actor, schedule_id)
    await session.delete(schedule)
    await session.flush()
