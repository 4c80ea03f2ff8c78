"""Workers: create, heartbeat, delete, list."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import CoreDep, CurrentActor, PageQuery, Session, Uow, retry_policy
from app.api.schemas import Paginated, WorkerResponse, WorkerSummary, paginated
from app.services import workers

router = APIRouter(prefix="/v1/joblib", tags=["workers"])


@router.post("/workers", status_code=status.HTTP_201_CREATED)
async def create_worker(uow: Uow, actor: CurrentActor) -> WorkerResponse:
    """Create a worker owned by the caller."""
    worker = await workers.create(uow.session, actor)
    await uow.commit()
    return WorkerResponse.model_validate(worker)


@router.get("/workers")
async def list_workers(
    session: Session, _: CurrentActor, page: PageQuery
) -> Paginated[WorkerSummary]:
    """All workers of all users, newest first."""
    result = await workers.list_all(session, page)
    return Paginated[WorkerSummary].model_validate(paginated(result, WorkerSummary.of))


@router.patch("/workers/{worker_id}")
async def heartbeat(
    worker_id: uuid.UUID, uow: Uow, actor: CurrentActor, core: CoreDep
) -> WorkerResponse:
    """Heartbeat: refresh the worker's last_heartbeat. Only its owner may."""
    worker = await workers.heartbeat(uow.session, actor, worker_id)
    await uow.commit()
    if core.presence is not None:
        core.presence.heartbeat(worker_id)  # a pending socket-disconnect cleanup is moot
    return WorkerResponse.model_validate(worker)


@router.delete("/workers/{worker_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_worker(worker_id: uuid.UUID, uow: Uow, actor: CurrentActor) -> Response:
    """Delete a worker: its claimed/running tasks fail, its providers and links go."""
    events = await workers.delete_one(uow.session, actor, worker_id, retry_policy(uow.core))
    await uow.commit(events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
