"""Wake-ups for long-polls: in-process, or through Redis pub/sub across replicas.

A waiter registers before it reads the task (so a change between the read and the
wait is never missed) and holds no database connection while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "jobserver:task-changed"


class TaskNotifier(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def watch(self, task_id: uuid.UUID) -> contextlib.AbstractContextManager[asyncio.Event]: ...
    async def publish(self, task_ids: Iterable[uuid.UUID]) -> None: ...


class LocalNotifier:
    """Waiters of this process, keyed by task id."""

    def __init__(self) -> None:
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @contextlib.contextmanager
    def watch(self, task_id: uuid.UUID) -> Iterator[asyncio.Event]:
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

    def wake(self, task_ids: Iterable[uuid.UUID]) -> None:
        for task_id in task_ids:
            for woke in self._waiters.get(task_id, ()):
                woke.set()

    async def publish(self, task_ids: Iterable[uuid.UUID]) -> None:
        self.wake(task_ids)


class RedisNotifier(LocalNotifier):
    """Publishes changed task ids on one channel; every replica wakes its own waiters."""

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self._redis = redis
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="task-notifier")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def publish(self, task_ids: Iterable[uuid.UUID]) -> None:
        ids = list(task_ids)
        if not ids:
            return
        self.wake(ids)  # no round trip for waiters on this replica
        await self._redis.publish(CHANNEL, ",".join(str(i) for i in ids))

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            data = data.decode()
                        if isinstance(data, str):
                            self.wake(uuid.UUID(part) for part in data.split(",") if part)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis blip must not end long-polling for good
                log.warning("task notifier lost Redis; resubscribing", exc_info=True)
                await asyncio.sleep(1)
