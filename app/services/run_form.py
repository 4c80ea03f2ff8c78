"""What the dashboard's Run form needs to know about a job: its schema, whether the server
checks payloads against it, and rooms to suggest. The submit itself is TaskService's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, TaskCount
from app.services.rooms import GLOBAL_ROOM, SPECIAL_ROOMS

# Rooms suggested beside the job's own: those it already has tasks in (a few task_counts
# rows per room, read by the table's primary key, which starts with the job's name).
SUGGESTED_ROOMS = 50


@dataclass(frozen=True)
class RunForm:
    job_name: str
    schema: dict[str, Any]
    validates: bool
    paused: bool
    default_priority: int | None
    default_room: str
    rooms: list[str]


def default_room(job: Job, used: list[str]) -> str:
    """The job's own room when it is an ordinary one; else a room it was run in, else
    @global (every room sees @global and @internal jobs; any room id may be chosen)."""
    if job.room_id not in SPECIAL_ROOMS:
        return job.room_id
    ordinary = [room for room in used if room not in SPECIAL_ROOMS]
    return ordinary[0] if ordinary else GLOBAL_ROOM


async def collect(session: AsyncSession, job_name: str) -> RunForm | None:
    """The form's data; None for a job never registered (or deleted). Never writes."""
    job = (await session.execute(select(Job).where(Job.full_name == job_name))).scalar_one_or_none()
    if job is None or job.deleted:
        return None
    used = list(
        (
            await session.execute(
                select(TaskCount.room_id)
                .where(TaskCount.job_name == job_name)
                .group_by(TaskCount.room_id)
                .order_by(TaskCount.room_id)
                .limit(SUGGESTED_ROOMS)
            )
        ).scalars()
    )
    room = default_room(job, used)
    return RunForm(
        job_name=job_name,
        schema=job.schema_ or {},
        validates=job.validate_payload,
        paused=job.paused,
        default_priority=job.default_priority,
        default_room=room,
        rooms=sorted({room, *used}),
    )
