"""The task state machine: a transition table and one guard."""

from __future__ import annotations

from enum import StrEnum

from app.errors import InvalidTaskTransition


class TaskStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
ACTIVE = frozenset({TaskStatus.CLAIMED, TaskStatus.RUNNING})

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.CLAIMED, TaskStatus.CANCELLED}),
    TaskStatus.CLAIMED: frozenset({TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def check_transition(old: str, new: str) -> None:
    """Raise InvalidTaskTransition unless the table allows old -> new."""
    if TaskStatus(new) not in TRANSITIONS[TaskStatus(old)]:
        raise InvalidTaskTransition(f"Cannot transition from '{old}' to '{new}'")


def is_terminal(status: str) -> bool:
    return status in TERMINAL
