"""Request and response bodies of /v1/joblib, named as the contract names them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.api.submit_options import FenceIn, SubmitOptionsIn, TaskOptionsOut
from app.services.jobs import JobView
from app.services.pages import Page
from app.services.states import TaskStatus
from app.services.task_views import TaskView
from app.services.workers import WorkerSummary as WorkerSummaryView

T = TypeVar("T")


class Paginated(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginated(page: Page[Any], convert: Any) -> dict[str, Any]:
    return {
        "items": [convert(item) for item in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


class WorkerResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    last_heartbeat: datetime


class WorkerSummary(BaseModel):
    id: uuid.UUID
    last_heartbeat: datetime
    job_count: int

    @classmethod
    def of(cls, summary: WorkerSummaryView) -> WorkerSummary:
        w = summary.worker
        return cls(id=w.id, last_heartbeat=w.last_heartbeat, job_count=summary.job_count)


class JobRegisterRequest(BaseModel):
    category: str
    name: str
    # The reference client sends `schema_`; others send `schema`. Prefer `schema`.
    schema_: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("schema", "schema_")
    )
    worker_id: uuid.UUID | None = None
    timeout_seconds: float | None = Field(
        None, gt=0, description="Beyond the contract: execution timeout of one task"
    )


class JobResponse(BaseModel):
    id: uuid.UUID
    room_id: str
    category: str
    name: str
    full_name: str
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    workers: list[uuid.UUID]
    worker_id: uuid.UUID | None

    @classmethod
    def of(cls, view: JobView) -> JobResponse:
        job = view.job
        return cls(
            id=job.id,
            room_id=job.room_id,
            category=job.category,
            name=job.name,
            full_name=job.full_name,
            schema_=job.schema_,
            workers=view.workers,
            worker_id=view.worker_id,
        )


class JobSummary(BaseModel):
    full_name: str
    category: str
    name: str
    workers: list[uuid.UUID]

    @classmethod
    def of(cls, view: JobView) -> JobSummary:
        job = view.job
        return cls(
            full_name=job.full_name, category=job.category, name=job.name, workers=view.workers
        )


class TaskSubmitRequest(SubmitOptionsIn):
    payload: dict[str, Any] = Field(default_factory=dict)


class TaskClaimRequest(BaseModel):
    worker_id: uuid.UUID


class TaskUpdateRequest(FenceIn):
    status: TaskStatus
    error: str | None = None
    result: Any = Field(None, description="Beyond the contract: any JSON, with `completed`")


class TaskResponse(TaskOptionsOut):
    id: uuid.UUID
    job_name: str
    room_id: str
    status: TaskStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    worker_id: uuid.UUID | None
    error: str | None
    payload: dict[str, Any]
    queue_position: int | None
    result: Any = None  # beyond the contract: what the worker reported with `completed`

    @classmethod
    def of(cls, view: TaskView) -> TaskResponse:
        t = view.task
        return cls(
            id=t.id,
            job_name=t.job_name,
            room_id=t.room_id,
            status=TaskStatus(t.status),
            created_at=t.created_at,
            started_at=t.started_at,
            completed_at=t.completed_at,
            worker_id=t.worker_id,
            error=t.error,
            payload=t.payload,
            queue_position=view.queue_position,
            result=t.result,
            **TaskOptionsOut.fields_of(t),
        )


class TaskClaimResponse(BaseModel):
    task: TaskResponse | None
