"""Request and response fields beyond the contract: submit options and the task's
scheduling state. All optional; a contract client never sends or needs them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)

from app.errors import PayloadTooLarge, UnprocessableContent
from app.services.tasks.submit import Submission, TaskOptions

# Bounds keep values inside a 32-bit integer column and a sane horizon.
MAX_PRIORITY = 1_000_000
MAX_DELAY_SECONDS = 366 * 24 * 3600
MAX_ATTEMPTS = 100
# Each parent is a row to check at submit and a dependency row to judge at settlement.
MAX_PARENTS = 100


class SubmitOptionsIn(BaseModel):
    priority: int | None = Field(
        None,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Higher is claimed first (default: the job's declared priority, else 0)",
    )
    delay_seconds: float | None = Field(
        None, ge=0, le=MAX_DELAY_SECONDS, description="Not claimable before now + this"
    )
    run_at: AwareDatetime | None = Field(None, description="Not claimable before this time")
    max_attempts: int | None = Field(
        None,
        ge=1,
        le=MAX_ATTEMPTS,
        description="Failures are retried until this many attempts (default: the job's "
        "declared max_attempts, else 1)",
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Resubmitting the same key to the same job and room returns that task",
    )
    concurrency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="The job's max_running_per_key counts running tasks by this key "
        "(a tenant, a user, a resource)",
    )

    depends_on: list[uuid.UUID | StrictInt] | None = Field(
        None,
        max_length=MAX_PARENTS,
        description="Task ids (or, in a bulk submit, indexes of earlier items) that must "
        "complete first; until then the task is `waiting`",
    )

    @model_validator(mode="after")
    def _one_due_time(self) -> SubmitOptionsIn:
        if self.delay_seconds is not None and self.run_at is not None:
            raise ValueError("give delay_seconds or run_at, not both")
        return self

    def options(self) -> TaskOptions:
        return TaskOptions(
            priority=self.priority,
            run_at=self.run_at,
            delay_seconds=self.delay_seconds,
            max_attempts=self.max_attempts,
            idempotency_key=self.idempotency_key,
            concurrency_key=self.concurrency_key,
            depends_on=tuple(
                p if isinstance(p, int) else str(p) for p in dict.fromkeys(self.depends_on or ())
            ),
        )


class TaskOptionsOut(BaseModel):
    priority: int = 0
    run_at: datetime | None = None
    attempt: int = 1
    max_attempts: int = 1
    concurrency_key: str | None = None


class FenceIn(BaseModel):
    """Optional PATCH fields: a report naming an attempt or worker that is no longer the
    task's current one is refused (409 stale-attempt). Naming both makes the report
    idempotent: repeating the task's current status changes nothing (200)."""

    attempt: int | None = Field(None, ge=1)
    worker_id: uuid.UUID | None = None


class BulkItemIn(SubmitOptionsIn):
    payload: dict[str, Any] = Field(default_factory=dict)


class BulkSubmitIn(BaseModel):
    # The count's limit is a setting (413 problem), checked before the items are.
    items: list[dict[str, Any]] = Field(min_length=1)

    def submissions(self, max_items: int) -> list[Submission]:
        """Each item validated on its own, so one 422 names every bad index."""
        if len(self.items) > max_items:
            raise PayloadTooLarge(
                f"{len(self.items)} tasks in one bulk submit; the limit is {max_items}"
            )
        problems: list[str] = []
        parsed: list[Submission] = []
        keys: set[str] = set()
        for index, raw in enumerate(self.items):
            try:
                item = BulkItemIn.model_validate(raw)
            except ValidationError as exc:
                reasons = ", ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}"
                    for e in exc.errors()
                )
                problems.append(f"items[{index}]: {reasons}")
                continue
            key = item.idempotency_key
            if key is not None and key in keys:
                problems.append(f"items[{index}]: idempotency_key repeats an earlier item")
            if key is not None:
                keys.add(key)
            parsed.append(Submission(item.payload, item.options()))
        if problems:
            raise UnprocessableContent("; ".join(problems))
        return parsed
