"""Sends committed @internal tasks to the broker.

The publisher calls it after commit for each task that became `claimed` as @internal; the
leader's repair pass calls it again for tasks not started by their re-send time. A send
that fails leaves the task `claimed`: the repair pass tries again (with backoff), so a
broker outage delays @internal tasks and never fails them. A hung broker (a dropped
network, not a refused port) costs a dispatch one send timeout, not a hung request or sweep.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Task
from app.internal.broker import TaskHandles

log = logging.getLogger(__name__)

# Taskiq's Redis broker waits for an answer without limit (its pool is shared with the
# worker's blocking pop); a send this slow is given up and left to the repair pass.
SEND_TIMEOUT_SECONDS = 1.0


class Dispatcher:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], handles: TaskHandles
    ) -> None:
        self.sessionmaker = sessionmaker
        self.handles = handles

    async def dispatch(self, task_ids: Iterable[str]) -> list[str]:
        """Enqueue each task still waiting to run; returns the ids that could not be sent
        (left for the repair pass)."""
        ids = [uuid.UUID(i) for i in task_ids]
        if not ids:
            return []
        # The session closes before sending: the in-memory broker starts the task at once.
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
        return await self._send(rows)

    async def _send(self, rows: Sequence[Row[tuple[uuid.UUID, str, str, Any]]]) -> list[str]:
        unsent: list[str] = []
        for index, (task_id, job_name, room_id, payload) in enumerate(rows):
            handle = self.handles.get(job_name)
            try:
                if handle is None:
                    raise LookupError(f"no executor for {job_name} in this process")
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    await handle.kiq(task_id=str(task_id), room_id=room_id, payload=payload)
            except TimeoutError:
                # The next send would hang as long: the rest wait for the repair pass too.
                log.warning(
                    "broker did not answer within %g s; %d internal task(s) left for the "
                    "repair pass",
                    SEND_TIMEOUT_SECONDS,
                    len(rows) - index,
                )
                unsent.extend(str(row[0]) for row in rows[index:])
                break
            except Exception:
                log.warning(
                    "could not dispatch internal task %s; the repair pass will retry",
                    task_id,
                    exc_info=True,
                )
                unsent.append(str(task_id))
        return unsent
