"""GET /tasks/{id} with `Prefer: wait=N`: answer once the task is terminal or time is up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.notify import TaskNotifier
from app.services import tasks
from app.services.states import is_terminal
from app.services.task_views import TaskView


@dataclass(frozen=True)
class Waited:
    view: TaskView
    applied: int | None  # the effective wait, echoed as Preference-Applied; None = no wait


async def read(
    session: AsyncSession,
    notifier: TaskNotifier,
    task_id: uuid.UUID,
    wait: int | None,
    max_wait: int,
) -> Waited:
    """Wake on the commit that made the task terminal, never by re-reading on a timer.

    The waiter is registered before the first read, so a completion landing between the
    read and the wait still wakes it; the session gives its connection back while waiting.
    """
    with notifier.watch(task_id) as woke:
        view = await tasks.get(session, task_id)
        if not wait or is_terminal(view.task.status):
            return Waited(view, None)
        effective = min(wait, max_wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + effective
        while not is_terminal(view.task.status):
            await session.rollback()  # hold no connection while waiting
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), remaining)
            woke.clear()
            view = await tasks.get(session, task_id)
            if loop.time() >= deadline:
                break
        return Waited(view, effective)
