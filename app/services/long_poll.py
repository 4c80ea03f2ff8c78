"""GET /tasks/{id} with `Prefer: wait=N`: answer once the task is terminal or time is up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Protocol

from app.errors import TaskNotFound
from app.lifecycle import Lifecycle
from app.services.tasks.records import TaskView
from app.services.tasks.states import is_terminal


class Watcher(Protocol):
    def watch(self, task_id: str) -> contextlib.AbstractContextManager[asyncio.Event]: ...


class Reader(Protocol):
    async def get(self, task_id: uuid.UUID) -> TaskView | None: ...


@dataclass(frozen=True)
class Waited:
    view: TaskView
    applied: int | None  # the effective wait, echoed as Preference-Applied; None = no wait


async def _read(tasks: Reader, task_id: uuid.UUID) -> TaskView:
    view = await tasks.get(task_id)
    if view is None:
        raise TaskNotFound(f"Task '{task_id}' not found")
    return view


async def read(
    tasks: Reader,
    notifier: Watcher,
    task_id: uuid.UUID,
    wait: int | None,
    max_wait: int,
    lifecycle: Lifecycle,
) -> Waited:
    """Wake on the commit that made the task terminal, never by re-reading on a timer.

    The waiter is registered before the first read, so a completion landing between the
    read and the wait still wakes it; no database connection is held while waiting.
    A server that starts stopping answers at once with the task as it is (the client asks
    again, of the restarted server or another replica).
    """
    with notifier.watch(str(task_id)) as woke, lifecycle.waking(woke):
        view = await _read(tasks, task_id)
        if not wait or is_terminal(view.task.status):
            return Waited(view, None)
        effective = min(wait, max_wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + effective
        while not is_terminal(view.task.status):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), remaining)
            woke.clear()
            view = await _read(tasks, task_id)
            if loop.time() >= deadline or lifecycle.stopping:
                break
        return Waited(view, effective)
