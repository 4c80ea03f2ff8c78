"""Runs one @internal task: claimed -> running -> completed|failed through TaskService.

Used by the taskiq task of every extension, in the server (embedded) or in `jobserver worker`.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any

import orjson
from pydantic import BaseModel

from app.errors import InvalidTaskTransition, StaleAttempt, TaskNotFound
from app.internal.extensions import RunContext, full_name
from app.internal.threads import ExtensionThreads, ThreadsClosed
from app.services.actors import Actor
from app.services.tasks.service import TaskService
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report

log = logging.getLogger(__name__)

# @internal tasks have no worker, so only a superuser may move them (REST.md, PATCH task).
# Nothing references the actor id, so no user row stands behind it.
SYSTEM_ACTOR = Actor(id=uuid.UUID(int=0), role="admin")


class Executor:
    def __init__(self, tasks: TaskService, threads: ExtensionThreads) -> None:
        self.tasks = tasks
        self.threads = threads

    async def run(
        self, cls: type[BaseModel], task_id: uuid.UUID, room_id: str, payload: dict[str, Any]
    ) -> None:
        """Run the extension once a thread is free (a coroutine `run` needs none)."""
        if inspect.iscoroutinefunction(getattr(cls, "run", None)):
            await self._run(cls, task_id, room_id, payload)
            return
        try:
            async with self.threads.slot():
                await self._run(cls, task_id, room_id, payload)
        except ThreadsClosed:
            # Still `claimed`: the leader's repair pass sends it again after the restart.
            log.info("internal task %s not started: the process is stopping", task_id)

    async def _run(
        self, cls: type[BaseModel], task_id: uuid.UUID, room_id: str, payload: dict[str, Any]
    ) -> None:
        """Run the extension unless the task already left `claimed`: a message delivered
        twice (or re-sent by the repair pass) finds the task running or done and stops."""
        if not await self._move(task_id, TaskStatus.RUNNING):
            log.info("internal task %s is not waiting to run; message dropped", task_id)
            return
        context = RunContext(task_id=task_id, room_id=room_id, job_name=full_name(cls))
        try:
            returned = await self._call(cls, payload, context)
        except Exception as exc:
            log.info("internal task %s failed: %r", task_id, exc)
            await self._move(task_id, TaskStatus.FAILED, str(exc) or type(exc).__name__)
            return
        await self._move(task_id, TaskStatus.COMPLETED, result=_storable(returned))

    async def _call(
        self, cls: type[BaseModel], payload: dict[str, Any], context: RunContext
    ) -> Any:
        extension: Any = cls(**payload)
        if inspect.iscoroutinefunction(extension.run):
            return await extension.run(context)
        # Extensions are plain blocking code; keep the event loop (and the server) free.
        return await self.threads.run(lambda: extension.run(context))

    async def _move(
        self,
        task_id: uuid.UUID,
        status: TaskStatus,
        error: str | None = None,
        result: str | None = None,
    ) -> bool:
        """One transition, committed and published. False when the state machine refuses
        it (cancelled, timed out by the sweeper, or already taken by another delivery)."""
        report = Report(str(task_id), status, error=error, result=result)
        try:
            await self.tasks.report(SYSTEM_ACTOR, report)
        except (InvalidTaskTransition, StaleAttempt, TaskNotFound):
            return False
        return True


def _storable(returned: Any) -> str | None:
    """The extension's return value as the task's result (JSON text) when it is JSON."""
    if returned is None:
        return None
    try:
        return orjson.dumps(returned).decode()
    except TypeError:
        return None
