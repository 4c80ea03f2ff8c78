"""Publishes a service's events after commit: Socket.IO emits and long-poll wake-ups.

A failed emit is logged and never fails the request (EVENTS.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from app import metrics
from app.notify import TaskNotifier
from app.services.events import Event, TaskChanged, dedupe
from app.services.states import is_terminal

log = logging.getLogger(__name__)
transitions_log = logging.getLogger("jobserver.tasks")


class Emitter(Protocol):
    async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None: ...


class InternalDispatch(Protocol):
    """Sends committed @internal tasks to their executor; returns events of failed sends."""

    async def dispatch(self, task_ids: Iterable[uuid.UUID]) -> list[Event]: ...


class Publisher:
    def __init__(
        self,
        notifier: TaskNotifier,
        emitter: Emitter | None = None,
        dispatcher: InternalDispatch | None = None,
    ) -> None:
        self.notifier = notifier
        self.emitter = emitter
        self.dispatcher = dispatcher

    async def publish(self, events: Iterable[Event]) -> None:
        unique = dedupe(events)
        record_transitions(unique)
        finished = [
            e.task_id for e in unique if isinstance(e, TaskChanged) and is_terminal(e.status)
        ]
        if finished:
            try:
                await self.notifier.publish(finished)
            except Exception:
                log.exception("could not publish task wake-ups")
        await self._emit(unique)
        await self._dispatch(unique)

    async def _emit(self, unique: list[Event]) -> None:
        if self.emitter is None:
            return
        # Concurrently: with the Redis manager each emit waits for a PUBLISH round trip,
        # and the contract defines no order between one operation's emissions.
        await asyncio.gather(*(self._emit_one(event) for event in unique if event.on_wire))

    async def _emit_one(self, event: Event) -> None:
        assert self.emitter is not None
        try:
            await self.emitter.emit(event.event_name, event.payload(), room=event.room)
        except Exception:
            log.exception("could not emit %s to %s", event.event_name, event.room)

    async def _dispatch(self, events: list[Event]) -> None:
        """@internal tasks that just became `claimed` go to the broker, after commit."""
        if self.dispatcher is None:
            return
        waiting = [
            e.task_id
            for e in events
            if isinstance(e, TaskChanged) and e.internal and e.status == "claimed"
        ]
        if not waiting:
            return
        try:
            failed = await self.dispatcher.dispatch(waiting)
        except Exception:  # the tasks are committed: the leader's repair pass re-sends them
            log.exception("could not dispatch internal tasks")
            return
        await self.publish(failed)


def record_transitions(events: list[Event]) -> None:
    """One log line and the metrics of each committed task transition."""
    metrics.observe(events)
    for event in events:
        if isinstance(event, TaskChanged):
            transitions_log.info(
                "task %s",
                event.status,
                extra={
                    "task_id": str(event.task_id),
                    "job": event.job_name,
                    "status": event.status,
                    "attempt": event.attempt,
                },
            )
