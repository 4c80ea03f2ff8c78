"""Every status change after the claim: workers' reports (single or batch), cancel, retry
and release on request, and the server's own moves (lost workers, expired leases,
timeouts, stuck @internal tasks). Each is one store call that judges and writes; a
refusal comes back as a verdict and is explained here with the contract's wording.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import (
    Forbidden,
    InvalidTaskTransition,
    JobNotFound,
    JobserverError,
    StaleAttempt,
    TaskNotFound,
    UnprocessableContent,
)
from app.services.actors import Actor
from app.services.events import Event, JobsInvalidate, ProvidersInvalidate
from app.services.json_limits import JsonLimits
from app.services.tasks import events
from app.services.tasks.records import RawJson, TaskView
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import (
    Judged,
    Judgements,
    Report,
    TaskStore,
    Verdict,
    WorkerSelection,
)

WORKER_DISCONNECTED = "Worker disconnected"
INTERNAL_TIMEOUT = "Internal worker timeout"
MAX_REPORT_BATCH = 500


@dataclass(frozen=True)
class Outcome:
    """One report's result: the task as it is now, or the problem that refused it."""

    task_id: str
    view: TaskView | None
    problem: JobserverError | None


def checked_result(
    status: TaskStatus, result: Any, error: str | None, limits: JsonLimits
) -> RawJson | None:
    """A report's texts within the limits: the error's size, and a result that rides only
    on `completed`, within its size and depth. Returns the result as JSON."""
    limits.error(error)
    if result is None:
        return None
    if status != TaskStatus.COMPLETED:
        raise UnprocessableContent("result is accepted only with status 'completed'")
    return limits.result(result).decode()


def explain(judged: Judged, task_id: str, wanted: str, action: str = "update") -> JobserverError:
    """The contract's problem for a refused write (REST.md: exact `detail` strings)."""
    match judged.verdict:
        case Verdict.NOT_FOUND:
            return TaskNotFound(f"Task '{task_id}' not found")
        case Verdict.STALE:
            return StaleAttempt(
                f"Task '{task_id}' is at attempt {judged.old_attempt}, held by "
                f"{judged.old_worker_id or 'no worker'}; the report names another attempt"
            )
        case Verdict.UNCLAIMED:
            return Forbidden("Task not claimed by any worker")
        case Verdict.NOT_YOURS:
            return Forbidden("Not authorized to update this task")
        case Verdict.FORBIDDEN:
            return Forbidden(f"Not authorized to {action} this task")
        case Verdict.JOB_GONE:
            return JobNotFound(f"Job of task '{task_id}' not found")
        case _:
            return InvalidTaskTransition(
                f"Cannot transition from '{judged.old_status}' to '{wanted}'"
            )


def _applied(judgements: Judgements, task_id: str, wanted: str, action: str) -> TaskView:
    judged = judgements.items[0]
    if judged.change is None:
        raise explain(judged, task_id, wanted, action)
    return judged.change.view


def _events_of(judgements: Judgements, *, announce: bool = False) -> list[Event]:
    changes = [j.change for j in judgements.items if j.change is not None]
    return events.of_changes(changes, announce=announce) + events.of_orphans(
        judgements.orphan_rooms
    )


async def _require_writer(store: TaskStore, actor: Actor, task_id: str) -> None:
    """Viewers change nothing; REST.md still answers 404 before any authorization."""
    if actor.role == "viewer":
        if await store.get(task_id) is None:
            raise TaskNotFound(f"Task '{task_id}' not found")
        actor.require_writer()


async def report(
    store: TaskStore, actor: Actor, item: Report, policy: RetryPolicy
) -> tuple[TaskView, list[Event]]:
    """PATCH /tasks/{id}: 404, fence, authorization, state table. A `failed` report with
    attempts left re-queues the task (beyond the contract); a fenced repeat of the current
    status changes nothing (so a lost answer may be retried)."""
    await _require_writer(store, actor, item.task_id)
    judgements = await store.report([item], actor, policy)
    view = _applied(judgements, item.task_id, item.status, "update")
    return view, _events_of(judgements)


async def report_many(
    store: TaskStore, actor: Actor, items: Sequence[Report], policy: RetryPolicy
) -> tuple[list[Outcome], list[Event]]:
    """Many fenced reports in one statement, each applied or refused on its own."""
    actor.require_writer()
    judgements = await store.report(items, actor, policy)
    outcomes = []
    for item, judged in zip(items, judgements.items, strict=True):
        if judged.change is None:
            problem = explain(judged, item.task_id, item.status)
            outcomes.append(Outcome(item.task_id, None, problem))
        else:
            outcomes.append(Outcome(item.task_id, judged.change.view, None))
    return outcomes, _events_of(judgements)


async def cancel(
    store: TaskStore, actor: Actor, task_id: uuid.UUID
) -> tuple[TaskView, list[Event]]:
    """pending/claimed/running -> cancelled. The worker's later reports then hit the state
    machine (cancelled is terminal), so the task never turns completed."""
    await _require_writer(store, actor, str(task_id))
    judgements = await store.cancel(str(task_id), actor)
    return _applied(judgements, str(task_id), "cancelled", "cancel"), _events_of(judgements)


async def retry(store: TaskStore, actor: Actor, task_id: uuid.UUID) -> tuple[TaskView, list[Event]]:
    """failed/cancelled -> a new pending attempt, due now, with one more attempt allowed."""
    await _require_writer(store, actor, str(task_id))
    judgements = await store.retry(str(task_id), actor)
    view = _applied(judgements, str(task_id), "pending", "retry")
    return view, _events_of(judgements, announce=True)


async def release(
    store: TaskStore, actor: Actor, task_id: uuid.UUID, attempt: int, worker_id: uuid.UUID
) -> tuple[TaskView, list[Event]]:
    """The holding worker hands the task back (it is shutting down): pending again, due
    now, no attempt spent; its later reports on this attempt are refused (stale)."""
    await _require_writer(store, actor, str(task_id))
    judgements = await store.release(str(task_id), attempt, str(worker_id), actor)
    view = _applied(judgements, str(task_id), "pending", "release")
    return view, _events_of(judgements, announce=True)


# --- the server's own moves -------------------------------------------------------------


async def lose_workers(
    store: TaskStore, selection: WorkerSelection, policy: RetryPolicy
) -> tuple[list[str], list[Event]]:
    """The worker cleanup cascade (REST.md DELETE /workers, the sweeper, a socket gone):
    their claimed/running tasks re-queued while attempts remain, else failed with
    "Worker disconnected"; their links and providers go; orphaned jobs are soft-deleted.
    Returns the ids of the workers removed and the events."""
    cleanup = await store.cleanup_workers(selection, WORKER_DISCONNECTED, policy)
    found: list[Event] = events.of_changes(cleanup.changes)
    found.extend(ProvidersInvalidate(room) for room in cleanup.provider_rooms)
    found.extend(JobsInvalidate(room) for room in cleanup.job_rooms)
    found.extend(events.of_orphans(cleanup.orphan_rooms))
    return cleanup.worker_ids, found


async def lose_stale_workers(
    store: TaskStore, stale_before: datetime, policy: RetryPolicy
) -> tuple[list[str], list[Event]]:
    return await lose_workers(store, WorkerSelection(stale_before=stale_before), policy)


async def expire_leases(store: TaskStore) -> list[Event]:
    """Claims not started within their lease go back to pending (no attempt spent)."""
    return events.of_changes(await store.expire_leases(), announce=True)


async def fail_timed_out(
    store: TaskStore, grace_seconds: float, policy: RetryPolicy
) -> list[Event]:
    return events.of_changes(await store.fail_timed_out(grace_seconds, policy))


async def fail_stuck_internal(store: TaskStore, older_than_seconds: float) -> list[Event]:
    return events.of_changes(await store.fail_stuck_internal(older_than_seconds, INTERNAL_TIMEOUT))
