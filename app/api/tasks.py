"""Tasks: submit, claim, read (with long-poll), update status, list; and the batch
protocol of our SDK (claim many, report many; beyond the contract)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from app.api.deps import CallerDep, CurrentActor, PageQuery, Session, Settings
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.responses import JsonResponse, problem_body
from app.api.schemas import (
    Paginated,
    TaskClaimBatchRequest,
    TaskClaimBatchResponse,
    TaskClaimRequest,
    TaskClaimResponse,
    TaskReportBatchRequest,
    TaskReportBatchResponse,
    TaskResponse,
    TaskSubmitRequest,
    TaskUpdateRequest,
    paginated,
    task_body,
)
from app.errors import (
    Conflict,
    InternalJobNotConfigured,
    InvalidRoomId,
    InvalidTaskTransition,
    JobNotFound,
    JobserverError,
    ParentEnded,
    StaleAttempt,
    TaskNotFound,
    UnknownParent,
    WorkerNotFound,
)
from app.services import long_poll
from app.services.tasks import reads, scope, transitions
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report
from app.services.tasks.submit import Submission

router = APIRouter(prefix="/v1/joblib", tags=["tasks"], route_class=StrictJsonRoute)

PREFER_WAIT = re.compile(r"wait=(\d+)")
# Longer numbers are beyond every cap (the callers apply theirs), and turning thousands of
# digits into an int costs time or fails outright.
MAX_WAIT_DIGITS = 9


def prefer_wait(prefer: str | None) -> int | None:
    """The first `wait=<digits>` in a Prefer header (RFC 7240), if any."""
    match = PREFER_WAIT.search(prefer or "")
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_WAIT_DIGITS else 10**MAX_WAIT_DIGITS


@router.post(
    "/rooms/{room_id}/tasks/{job_name:path}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskResponse,
    responses={
        200: {"model": TaskResponse, "description": "The idempotency key matched: that task"},
        **errors(InvalidRoomId, JobNotFound, Conflict, ParentEnded, UnknownParent),
        **errors(InternalJobNotConfigured),
    },
)
async def submit_task(
    room_id: str, job_name: str, body: TaskSubmitRequest, who: CallerDep
) -> Response:
    """Submit a task to a job; it is durable before this answers."""
    core, actor = who.core, who.actor
    readable_by = scope.limited_to(actor, core.settings.task_read_scope)
    submitted = await core.tasks.submit(
        actor, room_id, job_name, [Submission(body.payload, body.options())], readable_by
    )
    await scope.check_matched(core.store, readable_by, submitted.views, submitted.created)
    view = submitted.views[0]
    headers = {"Location": f"/v1/joblib/tasks/{view.task.id}", "Retry-After": "1"}
    # An idempotency key that matched answers 200 with the existing task (no new one).
    code = status.HTTP_202_ACCEPTED if submitted.created[0] else status.HTTP_200_OK
    return JsonResponse(task_body(view), code, headers)


@router.post("/tasks/claim", response_model=TaskClaimResponse, responses=errors(WorkerNotFound))
async def claim_task(body: TaskClaimRequest, who: CallerDep) -> Response:
    """Claim the next task for this worker, or `{"task": null}`."""
    core, actor = who.core, who.actor
    views = await core.tasks.claim(actor, body.worker_id)
    return JsonResponse({"task": task_body(views[0]) if views else None})


@router.post(
    "/tasks/claim-batch", response_model=TaskClaimBatchResponse, responses=errors(WorkerNotFound)
)
async def claim_tasks(body: TaskClaimBatchRequest, who: CallerDep) -> Response:
    """Beyond the contract: claim up to `limit` tasks for this worker in one call (claim
    order; each with its own lease). `{"tasks": []}` when nothing is claimable."""
    core, actor = who.core, who.actor
    views = await core.tasks.claim(actor, body.worker_id, body.limit)
    return JsonResponse({"tasks": [task_body(view) for view in views]})


@router.get("/tasks/{task_id}", response_model=TaskResponse, responses=errors(TaskNotFound))
async def get_task(
    task_id: uuid.UUID,
    who: CallerDep,
    prefer: Annotated[str | None, Header()] = None,
) -> Response:
    """Read a task. With `Prefer: wait=N`, hold the answer until the task is terminal
    (at most N seconds, capped by the server)."""
    core = who.core
    reader = scope.reader_for(who.actor, core.settings.task_read_scope, core.tasks, core.store)
    waited = await long_poll.read(
        reader,
        core.notifier,
        task_id,
        prefer_wait(prefer),
        core.settings.long_poll_max_wait_seconds,
        core.lifecycle,
    )
    headers = None
    if waited.applied is not None:
        headers = {"Preference-Applied": f"wait={waited.applied}"}
    return JsonResponse(task_body(waited.view), headers=headers)


@router.patch(
    "/tasks/{task_id}",
    response_model=TaskResponse,
    responses=errors(TaskNotFound, InvalidTaskTransition, StaleAttempt),
)
async def update_task(task_id: uuid.UUID, body: TaskUpdateRequest, who: CallerDep) -> Response:
    """Move a task along its state machine. With `completed`, a worker may report the
    task's `result` (any JSON up to the server's size limit). A report naming the task's
    current `attempt` and `worker_id` is fenced: from another attempt it is refused (409
    stale-attempt); repeating the current status changes nothing (200), so it may be
    retried safely."""
    core, actor = who.core, who.actor
    result = transitions.checked_result(body.status, body.result, body.error, core.tasks.limits)
    view = await core.tasks.report(actor, body.report(task_id, result))
    return JsonResponse(task_body(view))


@router.patch("/tasks", response_model=TaskReportBatchResponse)
async def update_tasks(body: TaskReportBatchRequest, who: CallerDep) -> Response:
    """Beyond the contract: many fenced reports in one call, each applied or refused on its
    own (the same rules as PATCH /tasks/{id}); one outcome per item, in order."""
    core, actor = who.core, who.actor
    reports: list[Report] = []
    refused: dict[int, JobserverError] = {}
    for index, item in enumerate(body.items):
        try:
            result = transitions.checked_result(
                item.status, item.result, item.error, core.tasks.limits
            )
        except JobserverError as error:  # a text over its limit refuses its own item only
            refused[index] = error
            continue
        reports.append(item.report(item.id, result))
    applied = iter(await core.tasks.report_many(actor, reports) if reports else [])
    items = []
    for index, item in enumerate(body.items):
        outcome = None if index in refused else next(applied)
        problem = refused.get(index) or (outcome.problem if outcome else None)
        view = outcome.view if outcome else None
        items.append(
            {
                "id": str(item.id),
                "applied": view is not None,
                "task_status": view.task.status if view else None,
                "problem": problem_body(problem) if problem else None,
            }
        )
    return JsonResponse({"items": items})


@router.get(
    "/rooms/{room_id}/tasks",
    response_model=Paginated[TaskResponse],
    responses=errors(InvalidRoomId),
)
async def list_room_tasks(
    room_id: str,
    session: Session,
    actor: CurrentActor,
    settings: Settings,
    page: PageQuery,
    status: TaskStatus | None = None,
) -> Response:
    """Tasks submitted to the room, newest first (with `TASK_READ_SCOPE=own`, an
    operator's own only)."""
    readable_by = scope.limited_to(actor, settings.task_read_scope)
    found = await reads.list_in_room(session, room_id, status, page, readable_by)
    return JsonResponse(paginated(found, task_body))
