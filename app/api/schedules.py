"""Schedules (beyond the contract): tasks the leader submits by cron or every N seconds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CurrentActor, PageQuery, Session, Settings
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.schemas import Paginated, paginated
from app.api.submit_options import MAX_ATTEMPTS, MAX_PRIORITY
from app.errors import InvalidRoomId, InvalidSchedule, ScheduleNotFound
from app.services.schedules import definitions
from app.services.schedules.definitions import ScheduleChange, ScheduleSpec

router = APIRouter(prefix="/v1/joblib", tags=["schedules"], route_class=StrictJsonRoute)

Priority = Annotated[int | None, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
Attempts = Annotated[int | None, Field(ge=1, le=MAX_ATTEMPTS)]


class ScheduleIn(BaseModel):
    job_name: str = Field(description="The job's full name, room:category:name")
    room_id: str = Field(description="The room each task is submitted to")
    payload: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = Field(None, description="A cron expression (5 fields, or 6 with seconds)")
    timezone: str = Field("UTC", description="IANA timezone the cron expression is read in")
    every_seconds: float | None = Field(None, description="Fire every this many seconds (>= 1)")
    enabled: bool = True
    catch_up: bool = Field(False, description="After downtime, fire the latest missed time")
    priority: Priority = None
    max_attempts: Attempts = None


class SchedulePatch(BaseModel):
    enabled: bool | None = None
    cron: str | None = None
    timezone: str | None = None
    every_seconds: float | None = None
    payload: dict[str, Any] | None = None
    catch_up: bool | None = None
    priority: Priority = None
    max_attempts: Attempts = None


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_name: str
    room_id: str
    payload: dict[str, Any]
    cron: str | None
    timezone: str
    every_seconds: float | None
    enabled: bool
    catch_up: bool
    priority: int | None
    max_attempts: int | None
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@router.post(
    "/schedules",
    status_code=status.HTTP_201_CREATED,
    responses=errors(InvalidRoomId, InvalidSchedule),
)
async def create_schedule(
    body: ScheduleIn, session: Session, actor: CurrentActor, settings: Settings
) -> ScheduleOut:
    """Submit `payload` to the job by `cron` (in `timezone`) or `every_seconds`, as the
    caller. Each fire time is submitted once, by the leader."""
    spec = ScheduleSpec(**body.model_dump())
    schedule = await definitions.create(session, actor, spec, settings.json_limits)
    await session.commit()
    return ScheduleOut.model_validate(schedule)


@router.get("/schedules")
async def list_schedules(
    session: Session,
    _: CurrentActor,
    page: PageQuery,
    job_name: str | None = None,
    room_id: str | None = None,
) -> Paginated[ScheduleOut]:
    """Schedules, newest first, optionally of one job or room."""
    found = await definitions.list_schedules(session, page, job_name, room_id)
    return Paginated[ScheduleOut].model_validate(paginated(found, ScheduleOut.model_validate))


@router.get("/schedules/{schedule_id}", responses=errors(ScheduleNotFound))
async def get_schedule(schedule_id: uuid.UUID, session: Session, _: CurrentActor) -> ScheduleOut:
    return ScheduleOut.model_validate(await definitions.get(session, schedule_id))


@router.patch("/schedules/{schedule_id}", responses=errors(ScheduleNotFound, InvalidSchedule))
async def change_schedule(
    schedule_id: uuid.UUID,
    body: SchedulePatch,
    session: Session,
    actor: CurrentActor,
    settings: Settings,
) -> ScheduleOut:
    """Change a schedule (its creator or an admin). A new rule, or enabling it again,
    counts the next fire time from now."""
    change = ScheduleChange(given=frozenset(body.model_fields_set), **body.model_dump())
    schedule = await definitions.update(session, actor, schedule_id, change, settings.json_limits)
    await session.commit()
    return ScheduleOut.model_validate(schedule)


@router.delete(
    "/schedules/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(ScheduleNotFound),
)
async def delete_schedule(
    schedule_id: uuid.UUID, session: Session, actor: CurrentActor
) -> Response:
    """Delete a schedule (its creator or an admin); tasks it submitted stay."""
    await definitions.delete(session, actor, schedule_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
