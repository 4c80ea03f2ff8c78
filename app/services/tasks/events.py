"""The events of task writes: the contract's `task_status_event` (and `task_available`
when a task becomes claimable at once) plus the in-process `TaskChanged` that wakes
long-polls, dispatches @internal tasks and feeds logs and metrics."""

from __future__ import annotations

from collections.abc import Iterable

from app.services.events import Event, JobsInvalidate, TaskAvailable, TaskChanged, TaskStatusEvent
from app.services.tasks.records import Change, TaskRecord
from app.services.tasks.states import TaskStatus

# A task due within this of its creation counts as due on submit (created_at and run_at
# are two reads of the clock); later ones are announced by the leader's scheduler pass.
DUE_ON_SUBMIT_SECONDS = 0.01


def status_event(task: TaskRecord, queue_position: int | None = None) -> TaskStatusEvent:
    return TaskStatusEvent(
        id=task.id,
        name=task.job_name,
        room_id=task.room_id,
        status=task.status,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        queue_position=queue_position,
        worker_id=task.worker_id,
        error=task.shown_error,
    )


def changed(task: TaskRecord) -> TaskChanged:
    return TaskChanged(
        task_id=task.id,
        status=task.status,
        internal=task.internal,
        job_name=task.job_name,
        attempt=task.attempt,
        created_at=task.created_at,
        claimed_at=task.claimed_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        has_dependants=task.has_dependants,
    )


def available(task: TaskRecord) -> TaskAvailable:
    return TaskAvailable(job_name=task.job_name, room_id=task.room_id, task_id=task.id)


def due_on_submit(task: TaskRecord) -> bool:
    return (task.run_at - task.created_at).total_seconds() <= DUE_ON_SUBMIT_SECONDS


def of_changes(changes: Iterable[Change], *, announce: bool = False) -> list[Event]:
    """The status event and wake-up of each written task; with `announce`, tasks pending
    again and due now (released, lease expired, retried) wake their job's workers too.
    A status unchanged (a repeated report) is no event at all."""
    events: list[Event] = []
    for change in changes:
        task = change.task
        if change.old_status == task.status:
            continue
        events.append(status_event(task, change.queue_position))
        events.append(changed(task))
        if announce and task.status == TaskStatus.PENDING and not task.internal:
            events.append(available(task))
    return events


def of_orphans(rooms: Iterable[str]) -> list[Event]:
    """jobs_invalidate for each room that lost a job to the orphan rule."""
    return [JobsInvalidate(room) for room in sorted(set(rooms))]
