"""Sends committed @internal tasks to the broker; a task whose send fails is marked failed.

The publisher calls it after commit for each task that became `claimed` as @internal; the
leader's repair pass calls it again for tasks whose message got lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Task
from app.errors import InvalidTaskTransition, TaskNotFound
from app.internal.broker import TaskHandles
from app.internal.executor import SYSTEM_ACTOR
from app.services import tasks
from app.services.events import Event
from app.services.states import TaskStatus

log = logging.getLogger(__name__)

DISPATCH_FAILED = "Failed to dispatch to internal executor"


class Dispatcher:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], handles: TaskHandles
    ) -> None:
        self.sessionmaker = sessionmaker
        self.handles = handles

    async def dispatch(self, task_ids: Iterable[uuid.UUID]) -> list[Event]:
        """Enqueue each task still waiting to run; returns the events of those that
        could not be sent (now failed), to publish."""
        ids = list(task_ids)
        if not ids:
            return []
        # The session closes before sending: the in-memory broker starts the task at once
        # and, on SQLite, it needs the one connection.
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Task.id, Task.job_name, Task.room_id, Task.payload).where(
                        Task.id.in_(ids),
                        Task.internal.is_(True),
                        Task.status == "claimed",
                        Task.started_at.is_(None),
                    )
                )
            ).all()
        failed: list[uuid.UUID] = []
        for task_id, job_name, room_id, payload in rows:
            handle = self.handles.get(job_name)
            try:
                if handle is None:
                    raise LookupError(f"no executor for {job_name} in this process")
                await handle.kiq(task_id=str(task_id), room_id=room_id, payload=payload)
            except Exception:
                log.exception("could not dispatch internal task %s", task_id)
                failed.append(task_id)
        return await self._fail(failed)

    async def _fail(self, task_ids: list[uuid.UUID]) -> list[Event]:
        events: list[Event] = []
        if not task_ids:
            return events
        async with self.sessionmaker() as session:
            for task_id in task_ids:
                try:
                    _, changed = await tasks.update_status(
                        session, SYSTEM_ACTOR, task_id, TaskStatus.FAILED, DISPATCH_FAILED
                    )
                except (InvalidTaskTransition, TaskNotFound):
                    continue  # it moved on meanwhile (ran after all, or was cancelled)
                events.extend(changed)
            await session.commit()
        return events
