"""Runs one @internal task: claimed -> running -> completed|failed through the service layer.

Used by the taskiq task of every extension, in the server (embedded) or in `jobserver worker`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.dialect import dialect_name
from app.db.models import Task
from app.errors import InvalidTaskTransition, TaskNotFound
from app.internal.extensions import RunContext, full_name
from app.realtime.publisher import Publisher
from app.services import tasks
from app.services.actors import Actor
from app.services.states import TaskStatus

log = logging.getLogger(__name__)

# @internal tasks have no worker, so only a superuser may move them (REST.md, PATCH task).
# Nothing references the actor id, so no user row stands behind it.
SYSTEM_ACTOR = Actor(id=uuid.UUID(int=0), role="admin")


class Executor:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher
    ) -> None:
        self.sessionmaker = sessionmaker
        self.publisher = publisher

    async def run(
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

    @staticmethod
    async def _call(cls: type[BaseModel], payload: dict[str, Any], context: RunContext) -> Any:
        extension: Any = cls(**payload)
        if inspect.iscoroutinefunction(extension.run):
            return await extension.run(context)
        # Extensions are plain blocking code; keep the event loop (and the server) free.
        return await asyncio.to_thread(extension.run, context)

    async def _move(
        self,
        task_id: uuid.UUID,
        status: TaskStatus,
        error: str | None = None,
        result: Any = None,
    ) -> bool:
        """One transition, committed and published. False when the state machine refuses
        it (cancelled, timed out by the sweeper, or already taken by another delivery)."""
        async with self.sessionmaker() as session:
            await _lock_on_sqlite(session, task_id)
            try:
                _, events = await tasks.update_status(
                    session, SYSTEM_ACTOR, task_id, status, error, result=result
                )
            except (InvalidTaskTransition, TaskNotFound):
                return False
            await session.commit()
        await self.publisher.publish(events)
        return True


def _storable(returned: Any) -> Any:
    """The extension's return value as the task's result when it is JSON, else None."""
    try:
        json.dumps(returned)
    except (TypeError, ValueError):
        return None
    return returned


async def _lock_on_sqlite(session: AsyncSession, task_id: uuid.UUID) -> None:
    """SQLite reads outside a transaction, so two worker processes could both read
    `claimed` and both run the task. A no-op write first takes SQLite's single writer lock
    for the whole transaction: the role FOR UPDATE plays on PostgreSQL."""
    if dialect_name(session) == "sqlite":
        await session.execute(update(Task).where(Task.id == task_id).values(status=Task.status))
