"""What a waiting task becomes from its parents' statuses (services/tasks/dependencies.py),
the rule SQLite runs and PostgreSQL's SETTLE statements mirror."""

from __future__ import annotations

from app.services.tasks.dependencies import settled
from app.services.tasks.states import TaskStatus

A, B = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"


def test_a_task_whose_parents_all_completed_becomes_pending() -> None:
    assert settled([(A, "completed"), (B, "completed")]) == (TaskStatus.PENDING, None)


def test_a_task_keeps_waiting_while_a_parent_has_not_ended() -> None:
    assert settled([(A, "completed"), (B, "running")]) is None
    assert settled([(A, "waiting")]) is None


def test_a_failed_or_cancelled_parent_cancels_even_while_another_runs() -> None:
    assert settled([(A, "running"), (B, "failed")]) == (TaskStatus.CANCELLED, f"parent {B} failed")
    assert settled([(B, "cancelled"), (A, "failed")]) == (
        TaskStatus.CANCELLED,
        f"parent {A} failed",
    )


def test_a_parent_that_is_gone_cancels_its_dependant() -> None:
    assert settled([(A, None)]) == (TaskStatus.CANCELLED, f"parent {A} not found")
