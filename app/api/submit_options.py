"""Request and response fields beyond the contract: submit options and the task's
scheduling state. All optional; a contract client never sends or needs them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

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


def _unknown_fields(model: type[BaseModel], data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    return sorted(str(name) for name in set(data) - set(model.model_fields))


def _refuse(unknown: list[str]) -> PydanticCustomError:
    return PydanticCustomError(
        "unknown_fields",
        "unknown field(s) {names}: a task's input goes inside `payload`",
        {"names": ", ".join(repr(name) for name in unknown)},
    )


class SubmitIn(SubmitOptionsIn):
    """A submit: the task's input (`payload`) and its options. Unknown fields beside
    `payload` are ignored (the contract, REST.md); a body of unknown fields without
    `payload` is refused by name: it is input sent without its wrapper, which would
    otherwise run as an empty payload."""

    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="The task's input; checked against the job's schema when the job "
        "asks for it (`validate_payload`)",
    )

    @model_validator(mode="before")
    @classmethod
    def _payload_wrapped(cls, data: Any) -> Any:
        unknown = _unknown_fields(cls, data)
        if unknown and "payload" not in data:
            raise _refuse(unknown)
        return data


class BulkItemIn(SubmitOptionsIn):
    """One task of a bulk submit (beyond the contract, so strict): the fields of a single
    submit, and no other."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(
        default_factory=dict, description="The task's input, as in a single submit"
    )

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        unknown = _unknown_fields(cls, data)
        if unknown:
            raise _refuse(unknown)
        return data


class BulkSubmitIn(BaseModel):
    # The count's limit is a setting (413 problem), checked by `submissions`.
    items: list[BulkItemIn] = Field(min_length=1)

    def submissions(self, max_items: int) -> list[Submission]:
        """The items in order; every item repeating an earlier one's idempotency key is
        named in one 422."""
        if len(self.items) > max_items:
            raise PayloadTooLarge(
                f"{len(self.items)} tasks in one bulk submit; the limit is {max_items}"
            )
        problems: list[str] = []
        keys: set[str] = set()
        for index, item in enumerate(self.items):
            key = item.idempotency_key
            if key is not None and key in keys:
                problems.append(f"items[{index}]: idempotency_key repeats an earlier item")
            if key is not None:
                keys.add(key)
        if problems:
            raise UnprocessableContent("; ".join(problems))
        return [
            Submission(item.payload, item.options(), where=f"/items/{index}/payload")
            for index, item in enumerate(self.items)
        ]
