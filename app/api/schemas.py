"""Request and response bodies of /v1/joblib, named as the contract names them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from app.api.submit_options import (
    MAX_ATTEMPTS,
    MAX_PRIORITY,
    FenceIn,
    SubmitIn,
    TaskOptionsOut,
)
from app.services.declarations import Declaration
from app.services.jobs import JobRegistration, JobView
from app.services.pages import Page
from app.services.tasks.claim import MAX_CLAIM_BATCH
from app.services.tasks.records import TaskView
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report
from app.services.tasks.transitions import MAX_REPORT_BATCH
from app.services.workers import WorkerSummary as WorkerSummaryView

T = TypeVar("T")
# The sweeper computes with the timeout; beyond a week a task is better off without one.
MAX_JOB_TIMEOUT_SECONDS = 7 * 24 * 3600
VALIDATE_PAYLOAD = (
    "Beyond the contract: check each submit's payload against the schema (JSON Schema "
    "Draft 2020-12) and refuse a mismatch with 422"
)
# A failure's traceback (beyond the contract); our SDK trims longer ones to their ends.
MAX_TRACEBACK_CHARS = 32_000


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
        None,
        gt=0,
        le=MAX_JOB_TIMEOUT_SECONDS,
        description="Beyond the contract: execution timeout of one task (at most 7 days)",
    )
    max_running: int | None = Field(
        None, ge=1, description="Beyond the contract: at most this many tasks claimed or running"
    )
    max_running_per_key: int | None = Field(
        None, ge=1, description="Beyond the contract: the same, per task concurrency_key"
    )
    validate_payload: bool | None = Field(
        None,
        description=VALIDATE_PAYLOAD + " (left out: a new job does not; an existing "
        "job keeps its setting)",
    )

    def registration(self) -> JobRegistration:
        return JobRegistration(
            self.category,
            self.name,
            self.schema_,
            self.worker_id,
            self.timeout_seconds,
            self.max_running,
            self.max_running_per_key,
            self.validate_payload,
        )


class JobSettingsIn(BaseModel):
    """A job declaration (beyond the contract): the job without a worker, plus its
    defaults and limits. A field left out keeps an existing job's value."""

    category: str
    name: str
    schema_: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("schema", "schema_")
    )
    max_attempts: int | None = Field(
        None, ge=1, le=MAX_ATTEMPTS, description="Default max_attempts of its submits"
    )
    timeout_seconds: float | None = Field(
        None, gt=0, le=MAX_JOB_TIMEOUT_SECONDS, description="Execution timeout of one task"
    )
    priority: int | None = Field(
        None, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Default priority of its submits"
    )
    max_running: int | None = Field(None, ge=1, description="At most this many claimed/running")
    max_running_per_key: int | None = Field(
        None, ge=1, description="At most this many claimed/running per concurrency_key"
    )
    validate_payload: bool | None = Field(None, description=VALIDATE_PAYLOAD)

    def declaration(self) -> Declaration:
        return Declaration(
            category=self.category,
            name=self.name,
            schema=self.schema_,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
            priority=self.priority,
            max_running=self.max_running,
            max_running_per_key=self.max_running_per_key,
            validate_payload=self.validate_payload,
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
    # Beyond the contract: flow control (see JobSettingsIn).
    declared: bool = False
    paused: bool = False
    timeout_seconds: float | None = None
    max_attempts: int | None = None
    priority: int | None = None
    max_running: int | None = None
    max_running_per_key: int | None = None
    validate_payload: bool = False  # beyond the contract: submits checked against the schema

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
            declared=job.declared,
            paused=job.paused,
            timeout_seconds=job.timeout_seconds,
            max_attempts=job.default_max_attempts,
            priority=job.default_priority,
            max_running=job.max_running,
            max_running_per_key=job.max_running_per_key,
            validate_payload=job.validate_payload,
        )


class JobSummary(BaseModel):
    full_name: str
    category: str
    name: str
    workers: list[uuid.UUID]
    declared: bool = False  # beyond the contract
    paused: bool = False  # beyond the contract
    validate_payload: bool = False  # beyond the contract

    @classmethod
    def of(cls, view: JobView) -> JobSummary:
        job = view.job
        return cls(
            full_name=job.full_name,
            category=job.category,
            name=job.name,
            workers=view.workers,
            declared=job.declared,
            paused=job.paused,
            validate_payload=job.validate_payload,
        )


class TaskSubmitRequest(SubmitIn):
    """A submit: the task's input in `payload`, plus the options beyond the contract.
    Unknown fields beside `payload` are ignored (the contract); without `payload` they
    are refused (422), so input sent without its wrapper is not run as an empty payload."""


class TaskClaimRequest(BaseModel):
    worker_id: uuid.UUID


class TaskClaimBatchRequest(BaseModel):
    worker_id: uuid.UUID
    limit: int = Field(1, ge=1, le=MAX_CLAIM_BATCH, description="Claim at most this many")


class TaskUpdateRequest(FenceIn):
    status: TaskStatus
    error: str | None = None
    result: Any = Field(None, description="Beyond the contract: any JSON, with `completed`")
    traceback: str | None = Field(
        None,
        max_length=MAX_TRACEBACK_CHARS,
        description="Beyond the contract: the failure's traceback, kept with the attempt",
    )

    def report(self, task_id: uuid.UUID, result_json: str | None) -> Report:
        return Report(
            task_id=str(task_id),
            status=self.status,
            error=self.error,
            result=result_json,
            attempt=self.attempt,
            worker_id=str(self.worker_id) if self.worker_id else None,
            traceback=self.traceback,
        )


class TaskReportItem(TaskUpdateRequest):
    """One report of a batch: always fenced (attempt and worker required)."""

    id: uuid.UUID
    attempt: int = Field(ge=1)
    worker_id: uuid.UUID


class TaskReportBatchRequest(BaseModel):
    items: list[TaskReportItem] = Field(min_length=1, max_length=MAX_REPORT_BATCH)

    @model_validator(mode="after")
    def _each_task_once(self) -> TaskReportBatchRequest:
        if len({item.id for item in self.items}) != len(self.items):
            raise ValueError("a task may appear only once in a batch")
        return self


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str


class TaskReportOutcome(BaseModel):
    id: uuid.UUID
    applied: bool
    task_status: TaskStatus | None = Field(description="The task's status after the report")
    problem: ProblemOut | None


class TaskReportBatchResponse(BaseModel):
    items: list[TaskReportOutcome]


class TaskReleaseRequest(BaseModel):
    worker_id: uuid.UUID
    attempt: int = Field(ge=1)


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
    # Beyond the contract: the running attempt's last progress report (0..1).
    progress: float | None = None
    progress_message: str | None = None
    progress_at: datetime | None = None

    @classmethod
    def of(cls, view: TaskView) -> TaskResponse:
        """As a model (the dashboard's pages); the API answers with `task_body` instead."""
        return cls.model_validate(task_body(view, parsed=True))


def task_body(view: TaskView, *, parsed: bool = False) -> dict[str, Any]:
    """A TaskResponse as a dict for orjson: JSON columns go in as stored, unparsed
    (`parsed=True` parses them, for a pydantic model)."""
    t = view.task
    payload: Any = t.payload_value() if parsed else orjson.Fragment(t.payload)
    result: Any = None
    if t.result is not None:
        result = t.result_value() if parsed else orjson.Fragment(t.result)
    return {
        "id": t.id,
        "job_name": t.job_name,
        "room_id": t.room_id,
        "status": t.status,
        "created_at": t.created_at,
        "started_at": t.started_at,
        "completed_at": t.completed_at,
        "worker_id": t.worker_id,
        "error": t.shown_error,
        "payload": payload,
        "queue_position": view.queue_position,
        "result": result,
        "priority": t.priority,
        "run_at": t.run_at,
        "attempt": t.attempt,
        "max_attempts": t.max_attempts,
        "concurrency_key": t.concurrency_key,
        "progress": t.progress,
        "progress_message": t.progress_message,
        "progress_at": t.progress_at,
    }


class TaskClaimBatchResponse(BaseModel):
    tasks: list[TaskResponse]


class TaskClaimResponse(BaseModel):
    task: TaskResponse | None
