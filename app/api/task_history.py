"""Beyond the contract: a running task's progress reports, and a task's attempt history.

Included before the tasks router, as task_actions is."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CallerDep, Session
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.responses import JsonResponse
from app.errors import InvalidTaskTransition, StaleAttempt, TaskNotFound
from app.services.tasks import attempts, scope
from app.services.tasks.store import ProgressReport

router = APIRouter(prefix="/v1/joblib", tags=["tasks"], route_class=StrictJsonRoute)
MAX_PROGRESS_MESSAGE = 1000


class TaskProgressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: uuid.UUID
    attempt: int = Field(ge=1)
    progress: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="0 to 1")
    message: str | None = Field(None, max_length=MAX_PROGRESS_MESSAGE)


class TaskProgressOut(BaseModel):
    id: uuid.UUID
    progress: float
    message: str | None
    stored: bool = Field(
        description="False: deferred, written within a second (one write per second per task)"
    )


class AttemptOut(BaseModel):
    attempt: int
    worker_id: uuid.UUID | None
    claimed_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str
    error: str | None
    traceback: str | None


class AttemptsOut(BaseModel):
    items: list[AttemptOut]


@router.post(
    "/tasks/{task_id}/progress",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskProgressOut,
    responses=errors(TaskNotFound, InvalidTaskTransition, StaleAttempt),
)
async def report_progress(task_id: uuid.UUID, body: TaskProgressIn, who: CallerDep) -> Response:
    """Report the progress of the attempt this worker holds (0 to 1, and a message). Fenced
    like a release (409 stale-attempt for another attempt), taken while the task is
    claimed or running; stored as the task's `progress` and pushed to its room as
    `task_progress`, at most once per second per task: a report within a second of the
    last one stored is accepted and written when the second has passed."""
    item = ProgressReport(
        str(task_id), body.attempt, str(body.worker_id), body.progress, body.message
    )
    stored = await who.core.tasks.report_progress(who.actor, item)
    answer = {"id": str(task_id), "progress": body.progress, "message": body.message}
    return JsonResponse({**answer, "stored": stored}, status.HTTP_202_ACCEPTED)


@router.get("/tasks/{task_id}/attempts", response_model=AttemptsOut, responses=errors(TaskNotFound))
async def list_attempts(task_id: uuid.UUID, who: CallerDep, session: Session) -> Response:
    """A task's attempts, oldest first: each with its worker, times, outcome (completed,
    failed, cancelled, released, expired; claimed or running for the current one), error
    and traceback. Readable by whoever may read the task."""
    core = who.core
    reader = scope.reader_for(who.actor, core.settings.task_read_scope, core.tasks, core.store)
    view = await scope.read_visible(reader, task_id)
    found = await attempts.history(session, view.task)
    return JsonResponse({"items": [attempt.body() for attempt in found]})
