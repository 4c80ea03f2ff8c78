"""The task store: the one gateway through which tasks are written (and read on the hot
path, with the providers' hot reads). Two implementations, chosen once at start:
PostgreSQL on asyncpg (one statement per call) and SQLite on its own driver (one
transaction per call). Neither uses the ORM.

Every call commits before it returns. The rules a write must pass (fencing,
authorization, the state table) are judged in the statement itself, so a refusal comes
back as a `Verdict` for the caller to explain; see `guard` for the rules as Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from app.services.actors import Actor
from app.services.tasks.records import Change, RawJson, TaskRecord, TaskView
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus


class Verdict(StrEnum):
    APPLY = "apply"
    REPEAT = "repeat"  # a fenced report of the status the task already has: nothing to do
    NOT_FOUND = "not_found"
    STALE = "stale"  # the report names an attempt or worker that is not current
    UNCLAIMED = "unclaimed"  # not the caller's to change: no worker holds it
    NOT_YOURS = "not_yours"  # not the caller's to change: another user's worker holds it
    FORBIDDEN = "forbidden"  # cancel/retry/release by someone with no say over the task
    INVALID = "invalid"  # the state table has no such edge
    JOB_GONE = "job_gone"  # retry of a task whose job was removed
    THROTTLED = "throttled"  # a progress report too soon after the last one stored


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to insert. `priority` and `max_attempts` left None take the job's defaults
    (its declaration), else 0 and 1."""

    id: str
    payload: RawJson
    priority: int | None = None
    run_at: datetime | None = None
    delay_seconds: float | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    # Tasks this one waits for (`waiting` until all completed): ids of existing tasks or
    # of tasks earlier in the same call.
    parents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """Where new tasks go: a job by full name, the submission room, the submitter, and the
    @internal jobs this server can run (others are refused before anything is stored)."""

    job_name: str
    room_id: str
    created_by: str
    runnable_internal: Sequence[str] = ()
    # The schema (JSON text) the payloads were checked against. A job that validates its
    # payloads takes them only when this equals its own schema (services/payload_schemas).
    checked_schema: RawJson | None = None


@dataclass(frozen=True, slots=True)
class JobRef:
    id: str
    deleted: bool
    internal: bool
    runnable: bool  # not @internal, or @internal with an executor here
    validates: bool = False  # the job checks payloads against its schema
    # The job's schema when the payloads were not checked against it: nothing was stored.
    schema_to_check: RawJson | None = None


@dataclass(frozen=True, slots=True)
class Inserted:
    """The job found (None: no such job) and, in input order, each task and whether this
    call created it (False: its idempotency key named an existing task)."""

    job: JobRef | None
    views: list[TaskView] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Claimed:
    owner: str | None  # the worker's user; None: no such worker
    changes: list[Change]


@dataclass(frozen=True, slots=True)
class Report:
    """A status report on one task. `attempt`/`worker_id` fence it (beyond the contract)."""

    task_id: str
    status: TaskStatus
    error: str | None = None
    result: RawJson | None = None
    attempt: int | None = None
    worker_id: str | None = None
    traceback: str | None = None  # beyond the contract: kept with the attempt it ends

    @property
    def fenced(self) -> bool:
        return self.attempt is not None and self.worker_id is not None


@dataclass(frozen=True, slots=True)
class Judged:
    """One task's outcome: the verdict, the row as it is now (written when APPLY, as it
    was for REPEAT; None otherwise), and what it was before, to explain a refusal."""

    verdict: Verdict
    change: Change | None = None
    old_status: str | None = None
    old_attempt: int | None = None
    old_worker_id: str | None = None


@dataclass(frozen=True, slots=True)
class Judgements:
    items: list[Judged]
    orphan_rooms: list[str] = field(default_factory=list)  # rooms of jobs soft-deleted


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """A fenced progress report on one task's running attempt (beyond the contract)."""

    task_id: str
    attempt: int
    worker_id: str
    progress: float
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Progressed:
    """A progress report's outcome: the verdict (APPLY: stored; THROTTLED: the task's
    progress was stored less than the interval ago, at `stored_at`), and the task."""

    judged: Judged
    room_id: str | None = None
    job_name: str | None = None
    stored_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Beat:
    owner: str | None  # None: no such worker
    last_heartbeat: datetime | None  # None: not refreshed (not the caller's)


@dataclass(frozen=True, slots=True)
class WorkerSelection:
    """Workers to clean up: these ids (when `silent_since` is set, only those that did
    not heartbeat after it), or every worker silent since `stale_before`."""

    ids: Sequence[str] = ()
    silent_since: datetime | None = None
    stale_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cleanup:
    worker_ids: list[str]
    changes: list[Change]
    job_rooms: list[str]  # rooms of jobs the workers served
    provider_rooms: list[str]  # rooms that lost a provider
    orphan_rooms: list[str]


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """What a provider read or upload needs of the provider."""

    id: str
    room_id: str
    full_name: str
    content_type: str
    user_id: str


@dataclass(frozen=True, slots=True)
class DueHead:
    job_name: str
    room_id: str
    task_id: str


class TaskStore(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def now(self) -> datetime: ...

    # --- the hot path ------------------------------------------------------------------
    async def submit(self, target: Target, tasks: Sequence[NewTask]) -> Inserted: ...
    async def claim(
        self, worker_id: str, actor_id: str, limit: int, lease_seconds: float
    ) -> Claimed: ...
    async def report(
        self, reports: Sequence[Report], actor: Actor, policy: RetryPolicy
    ) -> Judgements: ...
    async def get(self, task_id: str) -> TaskView | None: ...
    async def get_many(self, task_ids: Sequence[str]) -> list[TaskRecord]: ...
    async def heartbeat(self, worker_id: str, actor_id: str) -> Beat: ...
    async def worker_owner(self, worker_id: str) -> str | None: ...
    async def provider_by_name(self, full_name: str) -> ProviderRef | None: ...
    async def provider_by_id(self, provider_id: str) -> ProviderRef | None: ...

    # --- on request, beyond the contract -----------------------------------------------
    async def cancel(self, task_id: str, actor: Actor) -> Judgements: ...
    async def retry(self, task_id: str, actor: Actor) -> Judgements: ...
    async def release(
        self, task_id: str, attempt: int, worker_id: str, actor: Actor
    ) -> Judgements: ...
    async def progress(
        self, item: ProgressReport, actor: Actor, every_seconds: float, *, ended_ok: bool
    ) -> Progressed: ...

    # --- the server's own transitions (leader, presence, executor) --------------------
    async def cleanup_workers(
        self, selection: WorkerSelection, error: str, policy: RetryPolicy
    ) -> Cleanup: ...
    async def expire_leases(self) -> list[Change]: ...
    async def fail_timed_out(self, grace_seconds: float, policy: RetryPolicy) -> list[Change]: ...
    async def fail_stuck_internal(self, older_than_seconds: float, error: str) -> list[Change]: ...
    async def take_lost_dispatches(self, grace_seconds: float) -> list[str]: ...
    async def delete_finished(self, older_than_seconds: float, limit: int) -> int: ...
    async def count_active_under_limits(self) -> int: ...
    async def prune_throughput(self, older_than_seconds: float) -> None: ...
    async def settle_children(self, parent_ids: Sequence[str]) -> list[Change]: ...
    async def settle_waiting(self, limit: int) -> list[Change]: ...
    async def due_heads(
        self, since: datetime | None, overlap_seconds: float, due_on_submit_seconds: float
    ) -> tuple[list[DueHead], datetime]: ...
