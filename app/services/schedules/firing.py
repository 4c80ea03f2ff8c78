"""The leader's schedules pass: submit each due fire time once, then move the schedule on.

Exactly once across replicas, leader changes and restarts: a fire time is submitted with
the idempotency key `schedule:<id>:<fire time, ISO UTC>`, so a submit repeated after a
crash (between the submit and the schedule's update) or by an overlapping leader names the
task already stored instead of adding one. The schedule's update is a compare-and-set on
the `next_fire_at` the pass read, so a concurrent PATCH or pass is never overwritten.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Schedule
from app.errors import Forbidden, InternalJobNotConfigured, InvalidPayload, JobNotFound
from app.services import users
from app.services.actors import Actor
from app.services.schedules.rules import Plan, plan, rule_of
from app.services.tasks.service import TaskService
from app.services.tasks.submit import Submission, TaskOptions

log = logging.getLogger(__name__)

# Schedules handled per pass, the most overdue first; the rest wait one tick.
DUE_BATCH = 100
# A fire that cannot be submitted for these reasons is skipped (logged) and the schedule
# kept: the job may come back, the creator may be reactivated, the payload or the job's
# schema may change.
SKIPPED_FIRES = (JobNotFound, InternalJobNotConfigured, Forbidden, InvalidPayload)


def fire_key(schedule_id: uuid.UUID, moment: datetime) -> str:
    return f"schedule:{schedule_id}:{moment.astimezone(UTC).isoformat()}"


async def fire_due(
    sessions: async_sessionmaker[AsyncSession], tasks: TaskService, grace_seconds: float
) -> int:
    """One pass: every enabled schedule due by now (a batch). A schedule that fails is
    logged and costs only itself; it is tried again next pass. Returns the fires submitted."""
    now = await tasks.store.now()
    async with sessions() as session:
        due = await session.scalars(
            select(Schedule)
            # `enabled` as the partial index ix_schedules_due states it, so it serves.
            .where(Schedule.enabled, Schedule.next_fire_at <= now)
            .order_by(Schedule.next_fire_at)
            .limit(DUE_BATCH)
        )
        schedules = list(due)
    fired = 0
    for schedule in schedules:
        try:
            fired += await fire_one(sessions, tasks, schedule, now, grace_seconds)
        except Exception:
            log.exception("schedule %s could not fire; tried again next pass", schedule.id)
    return fired


async def fire_one(
    sessions: async_sessionmaker[AsyncSession],
    tasks: TaskService,
    schedule: Schedule,
    now: datetime,
    grace_seconds: float,
) -> int:
    assert schedule.next_fire_at is not None
    rule = rule_of(schedule.cron, schedule.timezone, schedule.every_seconds)
    planned = plan(rule, schedule.next_fire_at, now, grace_seconds, schedule.catch_up)
    if planned.missed:
        log.warning(
            "schedule %s missed fire times since %s (older than the grace); catch_up=%s",
            schedule.id,
            schedule.next_fire_at,
            schedule.catch_up,
        )
    async with sessions() as session:
        actor = await _creator(session, schedule)
    submitted = await submit_fires(tasks, actor, schedule, planned.fires) if actor else []
    async with sessions() as session:
        await _record(session, schedule, planned, submitted)
        await session.commit()
    return len(submitted)


async def _creator(session: AsyncSession, schedule: Schedule) -> Actor | None:
    user = None
    if schedule.created_by is not None:
        user = await users.get_active(session, schedule.created_by)
    if user is None:
        log.warning("schedule %s: its creator is gone or inactive; fire skipped", schedule.id)
        return None
    return users.actor_of(user)


async def submit_fires(
    tasks: TaskService, actor: Actor, schedule: Schedule, fires: Sequence[datetime]
) -> list[datetime]:
    """Submit each fire time as its creator would (events and wake-ups included); returns
    the fire times that now have a task."""
    done: list[datetime] = []
    for moment in fires:
        options = TaskOptions(
            priority=schedule.priority,
            max_attempts=schedule.max_attempts,
            idempotency_key=fire_key(schedule.id, moment),
        )
        try:
            await tasks.submit(
                actor, schedule.room_id, schedule.job_name, [Submission(schedule.payload, options)]
            )
        except SKIPPED_FIRES as error:
            log.warning("schedule %s: fire at %s skipped: %s", schedule.id, moment, error)
            continue
        done.append(moment)
    return done


async def _record(
    session: AsyncSession, schedule: Schedule, planned: Plan, submitted: Sequence[datetime]
) -> bool:
    """Move the schedule on, unless someone else did since the pass read it."""
    values: dict[str, datetime] = {"next_fire_at": planned.next_fire_at}
    if submitted:
        values["last_fired_at"] = submitted[-1]
    result = await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule.id, Schedule.next_fire_at == schedule.next_fire_at)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))
