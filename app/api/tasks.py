"""Tasks: submit, claim, read (with long-poll), update status, list."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from app.api.deps import CoreDep, CurrentActor, PageQuery, Session, Uow, retry_policy
from app.api.schemas import (
    Paginated,
    TaskClaimRequest,
    TaskClaimResponse,
    TaskResponse,
    TaskSubmitRequest,
    TaskUpdateRequest,
    paginated,
)
from app.services import long_poll, task_results, tasks
from app.services.states import TaskStatus
from app.services.tasks import Submission

router = APIRouter(prefix="/v1/joblib", tags=["tasks"])

PREFER_WAIT = re.compile(r"wait=(\d+)")


def prefer_wait(prefer: str | None) -> int | None:
    """The first `wait=<digits>` in a Prefer header (RFC 7240), if any."""
    match = PREFER_WAIT.search(prefer or "")
    return int(match.group(1)) if match else None


@router.post("/rooms/{room_id}/tasks/{job_name:path}", status_code=status.HTTP_202_ACCEPTED)
async def submit_task(
    room_id: str,
    job_name: str,
    body: TaskSubmitRequest,
    response: Response,
    uow: Uow,
    actor: CurrentActor,
    core: CoreDep,
) -> TaskResponse:
    """Submit a task to a job; it is durable before this answers."""
    submitted = await tasks.submit(
        uow.session,
        actor,
        room_id,
        job_name,
        Submission(body.payload, body.options()),
        core.internal_jobs,
    )
    await uow.commit(submitted.events)
    if not submitted.created:  # idempotency key matched: the existing task, no new one
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/joblib/tasks/{submitted.view.task.id}"
    response.headers["Retry-After"] = "1"
    return TaskResponse.of(submitted.view)


@router.post("/tasks/claim")
async def claim_task(body: TaskClaimRequest, uow: Uow, actor: CurrentActor) -> TaskClaimResponse:
    """Claim the next task for this worker, or `{"task": null}`."""
    view, events = await tasks.claim(uow.session, actor, body.worker_id)
    await uow.commit(events)
    return TaskClaimResponse(task=TaskResponse.of(view) if view else None)


@router.get("/tasks/{task_id}")
async def get_task(
    task_id: uuid.UUID,
    response: Response,
    session: Session,
    _: CurrentActor,
    core: CoreDep,
    prefer: Annotated[str | None, Header()] = None,
) -> TaskResponse:
    """Read a task. With `Prefer: wait=N`, hold the answer until the task is terminal
    (at most N seconds, capped by the server)."""
    wait = prefer_wait(prefer)
    waited = await long_poll.read(
        session, core.notifier, task_id, wait, core.settings.long_poll_max_wait_seconds
    )
    if waited.applied is not None:
        response.headers["Preference-Applied"] = f"wait={waited.applied}"
    return TaskResponse.of(waited.view)


@router.patch("/tasks/{task_id}")
async def update_task(
    task_id: uuid.UUID, body: TaskUpdateRequest, uow: Uow, actor: CurrentActor, core: CoreDep
) -> TaskResponse:
    """Move a task along its state machine. With `completed`, a worker may report the
    task's `result` (any JSON up to the server's size limit)."""
    task_results.check_result(body.status, body.result, core.settings.max_result_bytes)
    view, events = await tasks.update_status(
        uow.session,
        actor,
        task_id,
        body.status,
        body.error,
        body.fence(),
        retry_policy(core),
        result=body.result,
    )
    await uow.commit(events)
    return TaskResponse.of(view)


@router.get("/rooms/{room_id}/tasks")
async def list_room_tasks(
    room_id: str,
    session: Session,
    _: CurrentActor,
    page: PageQuery,
    status: TaskStatus | None = None,
) -> Paginated[TaskResponse]:
    """Tasks submitted to the room, newest first."""
    result = await tasks.list_in_room(session, room_id, status, page)
    return Paginated[TaskResponse].model_validate(paginated(result, TaskResponse.of))
