"""Publishes a service's events after commit: Socket.IO emits and long-poll wake-ups.

A failed emit is logged and never fails the request (EVENTS.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from app.notify import TaskNotifier
from app.services.events import Event, TaskChanged, dedupe
from app.services.states import is_terminal

log = logging.getLogger(__name__)


class Emitter(Protocol):
    async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None: ...


class Publisher:
    def __init__(self, notifier: TaskNotifier, emitter: Emitter | None = None) -> None:
        self.notifier = notifier
        self.emitter = emitter

    async def publish(self, events: Iterable[Event]) -> None:
        unique = dedupe(events)
        finished = [
            e.task_id for e in unique if isinstance(e, TaskChanged) and is_terminal(e.status)
        ]
        if finished:
            try:
                await self.notifier.publish(finished)
            except Exception:
                log.exception("could not publish task wake-ups")
        if self.emitter is None:
            return
        # Concurrently: with the Redis manager each emit waits for a PUBLISH round trip,
        # and the contract defines no order between one operation's emissions.
        await asyncio.gather(*(self._emit(event) for event in unique if event.on_wire))

    async def _emit(self, event: Event) -> None:
        assert self.emitter is not None
        try:
            await self.emitter.emit(event.event_name, event.payload(), room=event.room)
        except Exception:
            log.exception("could not emit %s to %s", event.event_name, event.room)
