"""Queue statistics (beyond the contract), for every job or for one room's tasks."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import CurrentActor, Session
from app.api.openapi_document import errors
from app.errors import InvalidRoomId
from app.services import stats

router = APIRouter(prefix="/v1/joblib", tags=["stats"])


class JobStatsOut(BaseModel):
    job_name: str
    counts: dict[str, int]
    oldest_pending_age_seconds: float | None
    completed_last_minute: int
    completed_last_hour: int
    failed_last_minute: int
    failed_last_hour: int
    paused: bool = False


class StatsOut(BaseModel):
    generated_at: datetime
    jobs: list[JobStatsOut]

    @classmethod
    def of(cls, found: stats.Stats) -> StatsOut:
        jobs: list[dict[str, Any]] = [asdict(job) for job in found.jobs]
        return cls.model_validate({"generated_at": found.generated_at, "jobs": jobs})


@router.get("/stats")
async def all_stats(session: Session, _: CurrentActor) -> StatsOut:
    """Per job: counts by status, age of the oldest pending task, and tasks completed or
    failed in the last minute and hour; and whether the job is paused."""
    return StatsOut.of(await stats.collect(session))


@router.get("/rooms/{room_id}/stats", responses=errors(InvalidRoomId))
async def room_stats(room_id: str, session: Session, _: CurrentActor) -> StatsOut:
    """The same, over the tasks submitted to this room."""
    return StatsOut.of(await stats.collect(session, room_id))
