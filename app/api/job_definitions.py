"""Declared jobs (beyond the contract): a job without a worker, with its defaults and limits."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.deps import CoreDep, CurrentActor, Settings, Uow
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.schemas import JobResponse, JobSettingsIn
from app.errors import InvalidCategory, InvalidRoomId, JobNotFound, SchemaConflict
from app.services import declarations, jobs

router = APIRouter(prefix="/v1/joblib", tags=["jobs"], route_class=StrictJsonRoute)


@router.put(
    "/rooms/{room_id}/job-definitions",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": JobResponse, "description": "It existed, with the same schema"},
        **errors(InvalidCategory, InvalidRoomId, SchemaConflict),
    },
)
async def declare_job(
    room_id: str,
    body: JobSettingsIn,
    response: Response,
    uow: Uow,
    actor: CurrentActor,
    settings: Settings,
    core: CoreDep,
) -> JobResponse:
    """Declare a job: tasks may be submitted to it before any worker registers it, and it
    stays until its declaration is deleted. 201 when created or reactivated, 200 when it
    existed (with the same schema; another schema is 409). Changing an existing job's
    settings is for its registrant or an admin."""
    settings.json_limits.schema(body.schema_)
    declared = await declarations.declare(
        uow.session, actor, room_id, body.declaration(), settings.allowed_categories
    )
    await uow.commit(declared.events)
    await jobs.count_claims_under_limits(core.tasks, declared.view.job)
    response.status_code = status.HTTP_201_CREATED if declared.created else status.HTTP_200_OK
    return JobResponse.of(declared.view)


@router.delete(
    "/rooms/{room_id}/job-definitions/{category}/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(JobNotFound),
)
async def undeclare_job(
    room_id: str, category: str, name: str, uow: Uow, actor: CurrentActor
) -> Response:
    """Delete a declaration: the job is removed at once when no worker serves it and no
    task waits for it, else by the usual rule once that holds. No accepted task is lost."""
    events = await declarations.undeclare(uow.session, actor, room_id, category, name)
    await uow.commit(events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
