"""Jobs: register, list, read, pause and resume; workers serving a room."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.deps import CoreDep, CurrentActor, PageQuery, Session, Settings, Uow
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.responses import JsonResponse
from app.api.schemas import (
    JobRegisterRequest,
    JobResponse,
    JobSummary,
    Paginated,
    TaskResponse,
    WorkerSummary,
    paginated,
    task_body,
)
from app.errors import (
    InternalJobNotPausable,
    InvalidCategory,
    InvalidRoomId,
    JobNotFound,
    SchemaConflict,
)
from app.services import jobs, pauses, workers
from app.services.tasks import reads, scope
from app.services.tasks.states import TaskStatus

router = APIRouter(prefix="/v1/joblib", tags=["jobs"], route_class=StrictJsonRoute)


@router.put(
    "/rooms/{room_id}/jobs",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": JobResponse, "description": "Already registered with the same schema"},
        **errors(InvalidCategory, InvalidRoomId, SchemaConflict),
    },
)
async def register_job(
    room_id: str,
    body: JobRegisterRequest,
    response: Response,
    uow: Uow,
    actor: CurrentActor,
    settings: Settings,
    core: CoreDep,
) -> JobResponse:
    """Register a job type in a room: 201 when created or reactivated, 200 when it
    already exists with the same schema."""
    settings.json_limits.schema(body.schema_)
    registered = await jobs.register(
        uow.session, actor, room_id, body.registration(), settings.allowed_categories
    )
    await uow.commit(registered.events)
    if body.max_running is not None or body.max_running_per_key is not None:
        await jobs.count_claims_under_limits(core.tasks, registered.view.job)
    response.status_code = status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK
    return JobResponse.of(registered.view)


@router.get("/rooms/{room_id}/jobs", responses=errors(InvalidRoomId))
async def list_jobs(
    room_id: str, session: Session, _: CurrentActor, page: PageQuery
) -> Paginated[JobSummary]:
    """Jobs visible from the room: its own, @global and @internal."""
    result = await jobs.list_visible(session, room_id, page)
    return Paginated[JobSummary].model_validate(paginated(result, JobSummary.of))


@router.get("/rooms/{room_id}/workers")
async def list_room_workers(
    room_id: str, session: Session, _: CurrentActor, page: PageQuery
) -> Paginated[WorkerSummary]:
    """Workers serving the jobs visible from the room."""
    result = await workers.list_for_room(session, room_id, page)
    return Paginated[WorkerSummary].model_validate(paginated(result, WorkerSummary.of))


# Routes ending in /tasks must be declared before the bare {job_name:path} route.
@router.get(
    "/rooms/{room_id}/jobs/{job_name:path}/tasks",
    response_model=Paginated[TaskResponse],
    responses=errors(InvalidRoomId),
)
async def list_job_tasks(
    room_id: str,
    job_name: str,
    session: Session,
    actor: CurrentActor,
    settings: Settings,
    page: PageQuery,
    status: TaskStatus | None = None,
) -> Response:
    """Tasks of one job submitted to this room, newest first (with
    `TASK_READ_SCOPE=own`, an operator's own only)."""
    readable_by = scope.limited_to(actor, settings.task_read_scope)
    found = await reads.list_for_job(session, room_id, job_name, status, page, readable_by)
    return JsonResponse(paginated(found, task_body))


@router.get("/rooms/{room_id}/jobs/{job_name:path}", responses=errors(InvalidRoomId, JobNotFound))
async def get_job(room_id: str, job_name: str, session: Session, _: CurrentActor) -> JobResponse:
    """One job by its full name."""
    return JobResponse.of(await jobs.get(session, room_id, job_name))


@router.post("/jobs/{job_name}/pause", responses=errors(JobNotFound, InternalJobNotPausable))
async def pause_job(job_name: str, uow: Uow, actor: CurrentActor) -> JobResponse:
    """Beyond the contract: claims skip the job's tasks until it is resumed; submits are
    still accepted. The job's registrant or an admin; @internal jobs: 409. Idempotent."""
    view, events = await pauses.set_paused(uow.session, actor, job_name, True)
    await uow.commit(events)
    return JobResponse.of(view)


@router.post("/jobs/{job_name}/resume", responses=errors(JobNotFound))
async def resume_job(job_name: str, uow: Uow, actor: CurrentActor) -> JobResponse:
    """Beyond the contract: the job's tasks are claimable again, and its waiting workers
    are woken when one is due. Idempotent."""
    view, events = await pauses.set_paused(uow.session, actor, job_name, False)
    await uow.commit(events)
    return JobResponse.of(view)
