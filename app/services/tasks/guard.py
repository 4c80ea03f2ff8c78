"""The rules a write to a task must pass, as plain functions over the locked row.

The SQLite store runs these; PostgreSQL's statements (db/store/postgres_sql.py) test the
same conditions in the same order in SQL, so that a call is one round trip there. The
contract tests run on both databases and hold the two to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.services.actors import Actor
from app.services.tasks.states import ACTIVE, TERMINAL, Cause, TaskStatus, allowed
from app.services.tasks.store import ProgressReport, Report, Verdict


@dataclass(frozen=True, slots=True)
class Held:
    """What the rules need of a task row (locked by the caller), and who stands behind it."""

    status: str
    attempt: int
    max_attempts: int
    worker_id: str | None
    worker_owner: str | None  # the holding worker's user, when that worker still exists
    created_by: str | None
    internal: bool


def _stale(held: Held, attempt: int | None, worker_id: str | None) -> bool:
    if attempt is not None and attempt != held.attempt:
        return True
    return worker_id is not None and worker_id != held.worker_id


def judge_report(held: Held | None, report: Report, actor: Actor) -> Verdict:
    """PATCH /tasks/{id} (REST.md): 404, the fence, authorization, then the state table.
    The caller has checked `actor.require_writer()`."""
    if held is None:
        return Verdict.NOT_FOUND
    if _stale(held, report.attempt, report.worker_id):
        return Verdict.STALE
    if not actor.is_superuser and not _withdraws_own(held, report, actor):
        if held.worker_id is None:
            return Verdict.UNCLAIMED
        if held.worker_owner != str(actor.id):
            return Verdict.NOT_YOURS
    if report.fenced and held.status == report.status:
        return Verdict.REPEAT
    if not allowed(Cause.REPORT, held.status, report.status):
        return Verdict.INVALID
    return Verdict.APPLY


def _withdraws_own(held: Held, report: Report, actor: Actor) -> bool:
    """[ours] The submitter may cancel its own task while no worker has it."""
    return (
        held.created_by == str(actor.id)
        and held.status == TaskStatus.PENDING
        and report.status == TaskStatus.CANCELLED
    )


def requeues(held: Held, report: Report) -> bool:
    """A failure with attempts left goes back to pending (beyond the contract)."""
    return (
        report.status == TaskStatus.FAILED
        and not held.internal
        and held.attempt < held.max_attempts
    )


def judge_action(held: Held | None, actor: Actor, *, has_say: bool, cause: Cause) -> Verdict:
    """POST /cancel and /retry: the submitter, an owner of a worker serving the job or
    holding the task (`has_say`), or an admin; then the state table."""
    if held is None:
        return Verdict.NOT_FOUND
    if not (actor.is_superuser or held.created_by == str(actor.id) or has_say):
        return Verdict.FORBIDDEN
    target = TaskStatus.CANCELLED if cause == Cause.CANCEL else TaskStatus.PENDING
    if (cause == Cause.RETRY and held.internal) or not allowed(cause, held.status, target):
        return Verdict.INVALID
    return Verdict.APPLY


def judge_release(held: Held | None, attempt: int, worker_id: str, actor: Actor) -> Verdict:
    """POST /release: only from the worker holding the current attempt (or an admin)."""
    if held is None:
        return Verdict.NOT_FOUND
    if _stale(held, attempt, worker_id):
        return Verdict.STALE
    if not actor.is_superuser and held.worker_owner != str(actor.id):
        return Verdict.FORBIDDEN
    if not allowed(Cause.RELEASE, held.status, TaskStatus.PENDING):
        return Verdict.INVALID
    return Verdict.APPLY


def judge_progress(
    held: Held | None, item: ProgressReport, actor: Actor, *, too_soon: bool, ended_ok: bool
) -> Verdict:
    """POST /tasks/{id}/progress: 404, the fence, the holding worker's owner (or an
    admin), an active task (or, for a deferred report, one its attempt ended), then at
    most one write per interval (`too_soon`)."""
    if held is None:
        return Verdict.NOT_FOUND
    if held.attempt != item.attempt or held.worker_id != item.worker_id:
        return Verdict.STALE
    if not actor.is_superuser and held.worker_owner != str(actor.id):
        return Verdict.NOT_YOURS
    if held.status not in ACTIVE and not (ended_ok and held.status in TERMINAL):
        return Verdict.INVALID
    return Verdict.THROTTLED if too_soon else Verdict.APPLY
