"""The taskiq broker (see broker_urls) and one taskiq task per extension."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from app.internal.broker_urls import QUEUE_NAME, make_broker
from app.internal.executor import Executor
from app.internal.extensions import full_name

__all__ = ["QUEUE_NAME", "TaskHandles", "make_broker", "register"]

TaskHandles = dict[str, AsyncTaskiqDecoratedTask[Any, None]]


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
