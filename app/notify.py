"""Long-poll waiters of this process, keyed by task id.

A waiter registers before it reads the task (so a change between the read and the wait is
never missed) and holds no database connection while it waits. The fan-out
(realtime/fanout.py) wakes them, for changes made here or on any other replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator


class TaskWaiters:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Event]:
        woke = asyncio.Event()
        self._waiters.setdefault(task_id, set()).add(woke)
        try:
            yield woke
        finally:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(woke)
                if not waiters:
                    del self._waiters[task_id]

    def wake(self, task_ids: Iterable[str]) -> None:
        if not self._waiters:
            return
        for task_id in task_ids:
            for woke in self._waiters.get(task_id, ()):
                woke.set()
