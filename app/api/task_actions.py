"""Beyond the contract: cancel, retry and release a task, and submit many tasks at once.

Included before the tasks router: `/bulk` would otherwise be swallowed by the submit
route's `{job_name:path}`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from app.api.deps import CallerDep
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.responses import JsonResponse
from app.api.schemas import TaskReleaseRequest, TaskResponse, task_body
from app.api.submit_options import BulkSubmitIn
from app.errors import (
    Conflict,
    InternalJobNotConfigured,
    InvalidRoomId,
    InvalidTaskTransition,
    JobNotFound,
    ParentEnded,
    StaleAttempt,
    TaskNotFound,
    UnknownParent,
)
from app.services.tasks import scope

router = APIRouter(prefix="/v1/joblib", tags=["tasks"], route_class=StrictJsonRoute)


class BulkSubmitOut(BaseModel):
    items: list[TaskResponse]


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=TaskResponse,
    responses=errors(TaskNotFound, InvalidTaskTransition),
)
async def cancel_task(task_id: uuid.UUID, who: CallerDep) -> Response:
    """Cancel a pending, claimed or running task (its submitter, an owner of a worker
    serving the job, or an admin). A worker's later report on it gets 409."""
    return JsonResponse(task_body(await who.core.tasks.cancel(who.actor, task_id)))


@router.post(
    "/tasks/{task_id}/retry",
    response_model=TaskResponse,
    responses=errors(TaskNotFound, InvalidTaskTransition),
)
async def retry_task(task_id: uuid.UUID, who: CallerDep) -> Response:
    """Run a failed or cancelled task again: a new pending attempt, due now."""
    return JsonResponse(task_body(await who.core.tasks.retry(who.actor, task_id)))


@router.post(
    "/tasks/{task_id}/release",
    response_model=TaskResponse,
    responses=errors(TaskNotFound, InvalidTaskTransition, StaleAttempt),
)
async def release_task(task_id: uuid.UUID, body: TaskReleaseRequest, who: CallerDep) -> Response:
    """Hand a claimed or running task back to the queue without spending an attempt (a
    worker shutting down). Fenced: only the worker holding the named attempt may; the
    task's `attempt` then advances, so that worker's later reports are refused (409
    stale-attempt), as is a repeated release (which may be taken as done)."""
    view = await who.core.tasks.release(who.actor, task_id, body.attempt, body.worker_id)
    return JsonResponse(task_body(view))


@router.post(
    "/rooms/{room_id}/tasks/{job_name:path}/bulk",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BulkSubmitOut,
    responses={
        **errors(InvalidRoomId, JobNotFound, Conflict, ParentEnded, UnknownParent),
        **errors(InternalJobNotConfigured),
    },
)
async def submit_bulk(room_id: str, job_name: str, body: BulkSubmitIn, who: CallerDep) -> Response:
    """Submit many tasks of one job (up to the server's limit, 1,000 by default), all or
    nothing; the tasks come back in order. Each item takes the fields of a single submit."""
    tasks = who.core.tasks
    submissions = body.submissions(tasks.limits.bulk_items)
    readable_by = scope.limited_to(who.actor, who.core.settings.task_read_scope)
    submitted = await tasks.submit(who.actor, room_id, job_name, submissions, readable_by)
    await scope.check_matched(who.core.store, readable_by, submitted.views, submitted.created)
    items = [task_body(view) for view in submitted.views]
    return JsonResponse({"items": items}, status.HTTP_202_ACCEPTED)
