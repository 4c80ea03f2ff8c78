"""Helpers of the schedule tests: a job to schedule, REST calls, and the tasks a schedule
submitted."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Schedule, Task
from app.db.types import utcnow_plus

ROOM = "r1"
JOB = "r1:modifiers:Echo"
SCHEDULES = "/v1/joblib/schedules"


async def register_job(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.put(
        f"/v1/joblib/rooms/{ROOM}/jobs",
        json={"category": "modifiers", "name": "Echo"},
        headers=headers,
    )
    assert response.status_code in (200, 201), response.text


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    fields: dict[str, Any] = {"job_name": JOB, "room_id": ROOM, "every_seconds": 60}
    fields.update(body)
    return await client.post(SCHEDULES, json=fields, headers=headers)


async def created(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await create(client, headers, **body)
    assert response.status_code == 201, response.text
    schedule_id: str = response.json()["id"]
    return schedule_id


async def make_due(
    sessions: async_sessionmaker[AsyncSession], schedule_id: str, seconds_ago: float
) -> None:
    """Move the next fire time into the past, as if the leader had been down that long."""
    async with sessions() as session:
        await session.execute(
            update(Schedule)
            .where(Schedule.id == uuid.UUID(schedule_id))
            .values(next_fire_at=utcnow_plus(-seconds_ago))
        )
        await session.commit()


async def load(sessions: async_sessionmaker[AsyncSession], schedule_id: str) -> Schedule:
    async with sessions() as session:
        found = await session.get(Schedule, uuid.UUID(schedule_id))
        assert found is not None
        return found


async def fired(sessions: async_sessionmaker[AsyncSession], schedule_id: str) -> list[Task]:
    """Tasks the schedule submitted, oldest first."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Task)
            .where(Task.idempotency_key.like(f"schedule:{schedule_id}:%"))
            .order_by(Task.seq)
        )
        return list(rows)
