"""Publishes a service's events after commit: Socket.IO emits and long-poll wake-ups (through
the fan-out, here and on every replica), the logs and metrics of task transitions, and the
dispatch of @internal tasks.

A failed emit is logged and never fails the request (EVENTS.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from app import metrics
from app.realtime.fanout import Fanout, Wire
from app.services.events import Event, TaskChanged, dedupe
from app.services.tasks.states import is_terminal

log = logging.getLogger(__name__)
transitions_log = logging.getLogger("jobserver.tasks")


class InternalDispatch(Protocol):
    """Sends committed @internal tasks to their executor; returns the ids not sent (the
    leader's repair pass sends them again)."""

    async def dispatch(self, task_ids: Iterable[str]) -> list[str]: ...


class Publisher:
    def __init__(self, fanout: Fanout, dispatcher: InternalDispatch | None = None) -> None:
        self.fanout = fanout
        self.dispatcher = dispatcher

    async def publish(self, events: Iterable[Event]) -> None:
        unique = dedupe(events)
        if not unique:
            return
        record_transitions(unique)
        wire: list[Wire] = []
        finished: list[str] = []
        for event in unique:
            if event.on_wire:
                wire.append((event.event_name, event.payload(), event.room))
            elif isinstance(event, TaskChanged) and is_terminal(event.status):
                finished.append(event.task_id)
        await self.fanout.deliver(wire, finished)
        await self._dispatch(unique)

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
            await self.dispatcher.dispatch(waiting)
        except Exception:  # the tasks are committed: the leader's repair pass re-sends them
            log.exception("could not dispatch internal tasks")


def record_transitions(events: list[Event]) -> None:
    """One log line and the metrics of each committed task transition. The line is built
    only when the level is on."""
    metrics.observe(events)
    if not transitions_log.isEnabledFor(logging.INFO):
        return
    for event in events:
        if isinstance(event, TaskChanged):
            transitions_log.info(
                "task %s",
                event.status,
                extra={
                    "task_id": event.task_id,
                    "job": event.job_name,
                    "status": event.status,
                    "attempt": event.attempt,
                },
            )
