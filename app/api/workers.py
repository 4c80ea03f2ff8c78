"""Workers: create, heartbeat, delete, list."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel

from app.api.deps import CallerDep, CoreDep, CurrentActor, PageQuery, Session, Uow
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.responses import JsonResponse
from app.api.schemas import Paginated, WorkerResponse, WorkerSummary, paginated
from app.errors import Forbidden, WorkerNotFound
from app.services import workers

router = APIRouter(prefix="/v1/joblib", tags=["workers"], route_class=StrictJsonRoute)


class WorkerCreateIn(BaseModel):
    id: uuid.UUID | None = None


@router.post(
    "/workers",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkerResponse,
    responses={200: {"model": WorkerResponse, "description": "The caller's worker of that id"}},
)
async def create_worker(
    uow: Uow, actor: CurrentActor, body: Annotated[WorkerCreateIn | None, Body()] = None
) -> Response:
    """Create a worker owned by the caller. Beyond the contract, the body may name the
    worker's `id`: a worker keeps one id for its life and re-creates itself with it after
    being swept (201); the caller's existing worker of that id is refreshed (200)."""
    worker, created = await workers.create(uow.session, actor, body.id if body else None)
    await uow.commit()
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JsonResponse({"id": str(worker.id), "last_heartbeat": worker.last_heartbeat}, code)


@router.get("/workers")
async def list_workers(
    session: Session, _: CurrentActor, page: PageQuery
) -> Paginated[WorkerSummary]:
    """All workers of all users, newest first."""
    result = await workers.list_all(session, page)
    return Paginated[WorkerSummary].model_validate(paginated(result, WorkerSummary.of))


@router.patch(
    "/workers/{worker_id}", response_model=WorkerResponse, responses=errors(WorkerNotFound)
)
async def heartbeat(worker_id: uuid.UUID, who: CallerDep) -> Response:
    """Heartbeat: refresh the worker's last_heartbeat. Only its owner may."""
    core, actor = who.core, who.actor
    actor.require_writer()
    beat = await core.tasks.heartbeat(worker_id, actor.id)
    if beat.owner is None:
        raise WorkerNotFound(f"Worker '{worker_id}' not found")
    if beat.last_heartbeat is None:  # REST.md: no superuser bypass
        raise Forbidden("Worker belongs to different user")
    if core.presence is not None:
        core.presence.heartbeat(worker_id)  # a pending socket-disconnect cleanup is moot
    return JsonResponse({"id": str(worker_id), "last_heartbeat": beat.last_heartbeat})


@router.delete(
    "/workers/{worker_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(WorkerNotFound),
)
async def delete_worker(
    worker_id: uuid.UUID, session: Session, actor: CurrentActor, core: CoreDep
) -> Response:
    """Delete a worker: its claimed/running tasks fail (or, with attempts left, wait for
    another worker), its providers and links go."""
    await workers.check_deletable(session, actor, worker_id)
    await session.close()
    await core.tasks.lose_workers([worker_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
