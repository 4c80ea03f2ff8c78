"""The write rules as plain functions (services/tasks/guard.py) and the state table: no
database. PostgreSQL's statements test the same conditions; the contract tests hold the
two to each other on both databases."""

from __future__ import annotations

import uuid

import pytest

from app.services.actors import Actor
from app.services.tasks import guard
from app.services.tasks.guard import Held
from app.services.tasks.states import EDGES, Cause, TaskStatus, edge_arrays
from app.services.tasks.store import Report, Verdict

OWNER = Actor(uuid.uuid4(), "operator")
STRANGER = Actor(uuid.uuid4(), "operator")
ADMIN = Actor(uuid.uuid4(), "admin")
WORKER = str(uuid.uuid4())


def held(status: str = "claimed", **changes: object) -> Held:
    values: dict[str, object] = {
        "status": status,
        "attempt": 1,
        "max_attempts": 1,
        "worker_id": WORKER,
        "worker_owner": str(OWNER.id),
        "created_by": str(STRANGER.id),
        "internal": False,
    }
    values.update(changes)
    return Held(**values)  # type: ignore[arg-type]


def report(status: str, **fence: object) -> Report:
    return Report("t", TaskStatus(status), **fence)  # type: ignore[arg-type]


def test_unknown_task_is_not_found_before_anything_else() -> None:
    assert guard.judge_report(None, report("running", attempt=9), STRANGER) == Verdict.NOT_FOUND


def test_a_report_naming_another_attempt_is_stale() -> None:
    assert guard.judge_report(held(), report("running", attempt=2), OWNER) == Verdict.STALE


def test_a_report_naming_another_worker_is_stale() -> None:
    stale = report("running", worker_id=str(uuid.uuid4()))
    assert guard.judge_report(held(), stale, OWNER) == Verdict.STALE


def test_the_fence_is_checked_before_authorization() -> None:
    assert guard.judge_report(held(), report("running", attempt=2), STRANGER) == Verdict.STALE


def test_a_task_no_worker_holds_is_not_a_users_to_change() -> None:
    unclaimed = held("pending", worker_id=None, worker_owner=None)
    assert guard.judge_report(unclaimed, report("claimed"), OWNER) == Verdict.UNCLAIMED


def test_another_users_worker_holds_it() -> None:
    assert guard.judge_report(held(), report("running"), STRANGER) == Verdict.NOT_YOURS


def test_an_admin_may_move_any_task() -> None:
    assert guard.judge_report(held(), report("running"), ADMIN) == Verdict.APPLY


def test_the_submitter_may_withdraw_its_pending_task() -> None:
    pending = held("pending", worker_id=None, worker_owner=None)
    assert guard.judge_report(pending, report("cancelled"), STRANGER) == Verdict.APPLY


def test_a_fenced_repeat_of_the_current_status_changes_nothing() -> None:
    repeat = report("running", attempt=1, worker_id=WORKER)
    assert guard.judge_report(held("running"), repeat, OWNER) == Verdict.REPEAT


def test_an_unfenced_repeat_is_an_invalid_transition() -> None:
    assert guard.judge_report(held("running"), report("running"), OWNER) == Verdict.INVALID


def test_a_failure_with_attempts_left_requeues() -> None:
    assert guard.requeues(held(max_attempts=2), report("failed"))
    assert not guard.requeues(held(max_attempts=1), report("failed"))
    assert not guard.requeues(held(max_attempts=2, internal=True), report("failed"))


def test_release_needs_the_current_attempt_of_the_holding_worker() -> None:
    assert guard.judge_release(held(), 1, WORKER, OWNER) == Verdict.APPLY
    assert guard.judge_release(held(), 2, WORKER, OWNER) == Verdict.STALE
    assert guard.judge_release(held(), 1, WORKER, STRANGER) == Verdict.FORBIDDEN
    assert guard.judge_release(held("completed"), 1, WORKER, OWNER) == Verdict.INVALID


def test_cancel_is_for_the_submitter_or_whoever_has_a_say_or_an_admin() -> None:
    assert guard.judge_action(held(), STRANGER, has_say=False, cause=Cause.CANCEL) == (
        Verdict.APPLY  # STRANGER submitted it
    )
    nobody = Actor(uuid.uuid4(), "operator")
    assert guard.judge_action(held(), nobody, has_say=False, cause=Cause.CANCEL) == (
        Verdict.FORBIDDEN
    )
    assert guard.judge_action(held(), nobody, has_say=True, cause=Cause.CANCEL) == Verdict.APPLY


def test_retry_refuses_internal_tasks() -> None:
    failed = held("failed", internal=True)
    assert guard.judge_action(failed, ADMIN, has_say=True, cause=Cause.RETRY) == Verdict.INVALID


@pytest.mark.parametrize("cause", list(Cause))
def test_every_edge_a_statement_receives_comes_from_the_table(cause: Cause) -> None:
    olds, news = edge_arrays(cause)
    assert set(zip(olds, news, strict=True)) == {(str(a), str(b)) for a, b in EDGES[cause]}


def test_requeue_edges_lead_back_to_pending() -> None:
    for cause in (Cause.REQUEUE, Cause.RELEASE, Cause.EXPIRE, Cause.RETRY):
        assert {new for _, new in EDGES[cause]} == {TaskStatus.PENDING}
    assert EDGES[Cause.CLAIM] == {(TaskStatus.PENDING, TaskStatus.CLAIMED)}
