"""Beyond the contract: cancel and retry a task, and submit many tasks at once.

Included before the tasks router: `/bulk` would otherwise be swallowed by the submit
route's `{job_name:path}`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from app.api.deps import CoreDep, CurrentActor, Uow
from app.api.schemas import TaskResponse
from app.api.submit_options import BulkSubmitIn
from app.services import bulk, task_actions

router = APIRouter(prefix="/v1/joblib", tags=["tasks"])


class BulkSubmitOut(BaseModel):
    items: list[TaskResponse]


@router.post("/tasks/{task_id}/cancel")
async def cancel_task(task_id: uuid.UUID, uow: Uow, actor: CurrentActor) -> TaskResponse:
    """Cancel a pending, claimed or running task (its submitter, an owner of a worker
    serving the job, or an admin). A worker's later report on it gets 409."""
    view, events = await task_actions.cancel(uow.session, actor, task_id)
    await uow.commit(events)
    return TaskResponse.of(view)


@router.post("/tasks/{task_id}/retry")
async def retry_task(task_id: uuid.UUID, uow: Uow, actor: CurrentActor) -> TaskResponse:
    """Run a failed or cancelled task again: a new pending attempt, due now."""
    view, events = await task_actions.retry(uow.session, actor, task_id)
    await uow.commit(events)
    return TaskResponse.of(view)


@router.post(
    "/rooms/{room_id}/tasks/{job_name:path}/bulk",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BulkSubmitOut,
)
async def submit_bulk(
    room_id: str, job_name: str, body: BulkSubmitIn, uow: Uow, actor: CurrentActor, core: CoreDep
) -> Response:
    """Submit up to 1,000 tasks of one job, all or nothing; the tasks come back in order.
    Each item takes the fields of a single submit."""
    submitted = await bulk.submit_many(
        uow.session, actor, room_id, job_name, body.submissions(), core.internal_jobs
    )
    await uow.commit(submitted.events)
    out = BulkSubmitOut(items=[TaskResponse.of(view) for view in submitted.views])
    # Serialised here: FastAPI would validate the 1,000 items a second time.
    return Response(out.model_dump_json(), status.HTTP_202_ACCEPTED, media_type="application/json")
