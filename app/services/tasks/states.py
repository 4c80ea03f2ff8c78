"""The task state machine: the statuses, every edge a task can take, and who takes it.

The table is data: the stores' statements receive their allowed edges from here, so the
rules live in one place whichever database runs them.
"""

from __future__ import annotations

import functools
from enum import StrEnum


class TaskStatus(StrEnum):
    WAITING = "waiting"  # beyond the contract: on parents (depends_on), not yet claimable
    PENDING = "pending"
    CLAIMED = "claimed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Cause(StrEnum):
    """What moves a task along an edge."""

    CLAIM = "claim"  # a worker takes a pending task
    REPORT = "report"  # PATCH by the holding worker (or an admin): the contract's table
    CANCEL = "cancel"  # POST /cancel (beyond the contract)
    RETRY = "retry"  # POST /retry: a finished task runs again (beyond the contract)
    REQUEUE = "requeue"  # a failure with attempts left: back to pending after the backoff
    RELEASE = "release"  # the worker hands the task back (shutdown): no attempt spent
    EXPIRE = "expire"  # a claim's lease ran out before the task started
    LOST = "lost"  # the worker is gone or stuck (cleanup, timeouts): the task fails
    SETTLE = "settle"  # its parents ended: a waiting task becomes pending, or is cancelled


W, P, C, R = TaskStatus.WAITING, TaskStatus.PENDING, TaskStatus.CLAIMED, TaskStatus.RUNNING
DONE, FAILED, CANCELLED = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED

TERMINAL = frozenset({DONE, FAILED, CANCELLED})
ACTIVE = frozenset({C, R})

EDGES: dict[Cause, frozenset[tuple[TaskStatus, TaskStatus]]] = {
    Cause.CLAIM: frozenset({(P, C)}),
    # REST.md section 1; pending -> claimed is the contract's quirk (an admin, no worker).
    Cause.REPORT: frozenset(
        {(P, C), (P, CANCELLED), (C, R), (C, FAILED), (C, CANCELLED)}
        | {(R, DONE), (R, FAILED), (R, CANCELLED)}
    ),
    Cause.CANCEL: frozenset({(W, CANCELLED), (P, CANCELLED), (C, CANCELLED), (R, CANCELLED)}),
    Cause.RETRY: frozenset({(FAILED, P), (CANCELLED, P)}),
    Cause.REQUEUE: frozenset({(C, P), (R, P)}),
    Cause.RELEASE: frozenset({(C, P), (R, P)}),
    Cause.EXPIRE: frozenset({(C, P)}),
    Cause.LOST: frozenset({(C, FAILED), (R, FAILED)}),
    Cause.SETTLE: frozenset({(W, P), (W, CANCELLED)}),
}


def allowed(cause: Cause, old: str, new: str) -> bool:
    return (old, new) in EDGES[cause]


@functools.cache
def edge_arrays(cause: Cause) -> tuple[list[str], list[str]]:
    """The edges of `cause` as two parallel lists (old, new), as SQL statements take them.
    Built once per cause: the status reports pass them on every call (never mutated)."""
    pairs = sorted(EDGES[cause])
    return [str(old) for old, _ in pairs], [str(new) for _, new in pairs]


def is_terminal(status: str) -> bool:
    return status in TERMINAL
