"""The taskiq broker (in-memory, or Redis list queue) and one taskiq task per extension."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, InMemoryBroker
from taskiq_redis import ListQueueBroker

from app.internal.executor import Executor
from app.internal.extensions import full_name

QUEUE_NAME = "jobserver:internal"

TaskHandles = dict[str, AsyncTaskiqDecoratedTask[Any, None]]


def make_broker(redis_url: str | None) -> AsyncBroker:
    if redis_url is None:
        return InMemoryBroker()
    # BRPOP blocks until a message comes. redis-py's default 5 s socket timeout would cut
    # it off on an idle queue, crash the taskiq worker, and could drop a message popped
    # just as the client gave up; keepalive still notices a dead connection.
    broker: AsyncBroker = ListQueueBroker(
        redis_url, queue_name=QUEUE_NAME, socket_timeout=None, socket_keepalive=True
    )
    return broker


def register(
    broker: AsyncBroker, extensions: Sequence[type[BaseModel]], executor: Executor
) -> TaskHandles:
    """A taskiq task named `@internal:{category}:{Name}` for each extension; keyword args
    `task_id`, `room_id`, `payload` as in the contract (BACKGROUND.md §2)."""
    handles: TaskHandles = {}
    for cls in extensions:
        name = full_name(cls)
        handles[name] = broker.register_task(_task_for(cls, executor), task_name=name)
    return handles


def _task_for(cls: type[BaseModel], executor: Executor) -> Any:
    async def execute(task_id: str, room_id: str, payload: dict[str, Any]) -> None:
        await executor.run(cls, uuid.UUID(task_id), room_id, payload)

    return execute
