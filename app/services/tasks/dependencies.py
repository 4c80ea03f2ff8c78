"""Dependencies between tasks (beyond the contract): a task submitted with `depends_on`
waits (`waiting`) until every parent completed, then becomes pending; a parent that failed
or was cancelled cancels it. The rules at submit and at settlement, as Python; SQLite runs
these, PostgreSQL's SETTLE statements mirror `settled`."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence

from app.errors import ParentEnded, UnknownParent, UnprocessableContent
from app.services.events import Event, TaskChanged
from app.services.tasks import scope
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import NewTask, TaskStore

ENDED_BADLY = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})
SETTLING = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


def with_parents(
    tasks: Sequence[NewTask], depends_on: Sequence[Sequence[str | int]]
) -> list[NewTask]:
    """Each task with its parents as ids: an index names an earlier task of the batch."""
    problems: list[str] = []
    linked: list[NewTask] = []
    for index, (task, refs) in enumerate(zip(tasks, depends_on, strict=True)):
        parents: list[str] = []
        for ref in refs:
            if isinstance(ref, str):
                parents.append(ref)
            elif 0 <= ref < index:
                parents.append(tasks[ref].id)
            else:
                problems.append(f"items[{index}]: depends_on {ref} is not an earlier item")
        linked.append(dataclasses.replace(task, parents=tuple(dict.fromkeys(parents))))
    if problems:
        raise UnknownParent("; ".join(problems))
    return linked


async def check_parents(
    store: TaskStore, parent_ids: Iterable[str], readable_by: uuid.UUID | None
) -> None:
    """Every named parent exists and the submitter may read it (422 naming those that do
    not), and none already failed or was cancelled (409 naming it)."""
    wanted = sorted(set(parent_ids))
    if not wanted:
        return
    found = {t.id: t for t in await store.get_many(wanted)}
    unknown = [p for p in wanted if p not in found]
    if readable_by is not None:
        for parent in wanted:
            task = found.get(parent)
            if task is not None and not await scope.may_read(
                store, readable_by, task.created_by, task.worker_id
            ):
                unknown.append(parent)
    if unknown:
        raise UnknownParent(f"depends_on names unknown tasks: {', '.join(sorted(unknown))}")
    for parent in wanted:
        if found[parent].status in ENDED_BADLY:
            raise ParentEnded(f"Parent task '{parent}' is {found[parent].status}")


def refuse_internal(job_name: str, tasks: Sequence[NewTask]) -> None:
    # @internal tasks are dispatched to the broker when stored; nothing would send a
    # waiting one once its parents end.
    if job_name.startswith("@internal:") and any(t.parents for t in tasks):
        raise UnprocessableContent("depends_on is not supported for @internal jobs")


def settled(parents: Sequence[tuple[str, str | None]]) -> tuple[TaskStatus, str | None] | None:
    """What a waiting task becomes given its parents (id, status; None: the row is gone):
    cancelled naming the first parent that failed, was cancelled or is gone; pending when
    all completed; None while any still runs."""
    for parent_id, status in sorted(parents):
        if status is None:
            return TaskStatus.CANCELLED, f"parent {parent_id} not found"
        if status in ENDED_BADLY:
            return TaskStatus.CANCELLED, f"parent {parent_id} {status}"
    if all(status == TaskStatus.COMPLETED for _, status in parents):
        return TaskStatus.PENDING, None
    return None


def ended_parents(events: Iterable[Event]) -> list[str]:
    """Tasks in `events` that just ended and have dependants to settle."""
    return sorted(
        {
            e.task_id
            for e in events
            if isinstance(e, TaskChanged) and e.has_dependants and e.status in SETTLING
        }
    )
