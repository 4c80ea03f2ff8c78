"""Who may read which task (`JOBSERVER_TASK_READ_SCOPE`).

`all` is the contract: any signed-in user reads any task. With `own`, an operator reads
only the tasks it submitted or that one of its workers holds (the task's `worker_id`);
admins and viewers still read all. A task out of scope is "not found" (404), so its id
tells nothing. The check uses the row the read already has: the submitter costs
nothing, the holding worker's owner one primary-key lookup (a worker watching its own
task; asked once per request).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import ColumnElement, or_, select

from app.db.models import Task, Worker
from app.errors import Conflict, TaskNotFound
from app.services.actors import Actor
from app.services.tasks.records import TaskView

Scope = Literal["all", "own"]
ALL_READERS = frozenset({"admin", "viewer"})


def limited_to(actor: Actor, scope: Scope) -> uuid.UUID | None:
    """The user whose tasks alone `actor` may read, or None when it reads all."""
    if scope == "all" or actor.role in ALL_READERS:
        return None
    return actor.id


def owned_by(user_id: uuid.UUID) -> ColumnElement[bool]:
    """The tasks `user_id` may read under `own`, as a WHERE clause for lists."""
    mine = select(Worker.id).where(Worker.user_id == user_id)
    return or_(Task.created_by == user_id, Task.worker_id.in_(mine))


class Owners(Protocol):
    async def worker_owner(self, worker_id: str) -> str | None: ...


async def may_read(
    owners: Owners, user_id: uuid.UUID, created_by: str | None, worker_id: str | None
) -> bool:
    """Under `own`: `user_id` submitted the task, or owns the worker holding it."""
    me = str(user_id)
    if created_by == me:
        return True
    if worker_id is None:
        return False
    return await owners.worker_owner(worker_id) == me


async def check_matched(
    owners: Owners, user_id: uuid.UUID | None, views: Sequence[TaskView], created: Sequence[bool]
) -> None:
    """A submit whose idempotency key named an existing task answers with that task: under
    `own`, only if the caller may read it, else 409 (the key is taken; nothing was stored
    for that item)."""
    if user_id is None:
        return
    for index, (view, new) in enumerate(zip(views, created, strict=True)):
        task = view.task
        if not new and not await may_read(owners, user_id, task.created_by, task.worker_id):
            raise Conflict(f"Item {index}: idempotency key already used by another user's task")


class Reader(Protocol):
    async def get(self, task_id: uuid.UUID) -> TaskView | None: ...


@dataclass
class ScopedReader:
    """A task reader that sees only the tasks of `user_id` (None for an out-of-scope
    task). Once a task was allowed, a long-poll's later reads of it are not checked."""

    tasks: Reader
    owners: Owners
    user_id: uuid.UUID
    _allowed: set[uuid.UUID] = field(default_factory=set)

    async def get(self, task_id: uuid.UUID) -> TaskView | None:
        view = await self.tasks.get(task_id)
        if view is None or task_id in self._allowed:
            return view
        task = view.task
        if not await may_read(self.owners, self.user_id, task.created_by, task.worker_id):
            return None
        self._allowed.add(task_id)
        return view


def reader_for(actor: Actor, scope: Scope, tasks: Reader, owners: Owners) -> Reader:
    """The reader `actor` reads tasks through: all of them, or only its own."""
    limit = limited_to(actor, scope)
    return tasks if limit is None else ScopedReader(tasks, owners, limit)


async def read_visible(reader: Reader, task_id: uuid.UUID) -> TaskView:
    """The task through `reader`; one out of its scope is as missing as an unknown one."""
    view = await reader.get(task_id)
    if view is None:
        raise TaskNotFound(f"Task '{task_id}' not found")
    return view
