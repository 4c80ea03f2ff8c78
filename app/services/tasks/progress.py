"""Progress reports (beyond the contract): fenced like a release, stored on the task at
most once per interval per task, and pushed to the task's room after each write.

A report within the interval of the last one stored is accepted and deferred: the task's
latest deferred report is written once the interval has passed, even if the attempt has
ended by then (a worker's last report before its final status is not lost), or when the
server stops. Reports of one task arriving while one is deferred replace it without a
round trip. The store enforces the interval too, so replicas share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.errors import InvalidTaskTransition, JobserverError
from app.services.actors import Actor
from app.services.events import Event, TaskProgress
from app.services.tasks.store import Progressed, ProgressReport, TaskStore, Verdict
from app.services.tasks.transitions import explain

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_SECONDS = 1.0


class Publish(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


@dataclass(frozen=True, slots=True)
class Deferred:
    item: ProgressReport
    actor: Actor

    def same_attempt(self, item: ProgressReport, actor: Actor) -> bool:
        """Fenced and allowed as the deferred one was (checked less than an interval ago)."""
        mine = self.item
        return (mine.attempt, mine.worker_id, self.actor.id) == (
            item.attempt,
            item.worker_id,
            actor.id,
        )


def refusal(progressed: Progressed, task_id: str) -> JobserverError:
    judged = progressed.judged
    if judged.verdict == Verdict.INVALID:
        return InvalidTaskTransition(
            f"Task '{task_id}' is {judged.old_status}: progress is taken only while it is "
            "claimed or running"
        )
    return explain(judged, task_id, "progress", "report progress on")


def progress_event(progressed: Progressed, item: ProgressReport) -> TaskProgress:
    return TaskProgress(
        id=item.task_id,
        room_id=progressed.room_id or "",
        job_name=progressed.job_name or "",
        attempt=item.attempt,
        progress=item.progress,
        message=item.message,
        progress_at=progressed.stored_at,
    )


@dataclass
class ProgressCoalescer:
    store: TaskStore
    publisher: Publish
    interval: float = PROGRESS_INTERVAL_SECONDS
    _deferred: dict[str, Deferred] = field(default_factory=dict)
    _timers: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def report(self, actor: Actor, item: ProgressReport) -> bool:
        """Store the report now (True) or defer it (False); a refused one raises."""
        waiting = self._deferred.get(item.task_id)
        if waiting is not None and waiting.same_attempt(item, actor):
            self._deferred[item.task_id] = Deferred(item, actor)
            return False
        progressed = await self.store.progress(item, actor, self.interval, ended_ok=False)
        if progressed.judged.verdict == Verdict.APPLY:
            self._deferred.pop(item.task_id, None)  # older than what was just written
            await self.publisher.publish([progress_event(progressed, item)])
            return True
        if progressed.judged.verdict == Verdict.THROTTLED:
            self._defer(Deferred(item, actor))
            return False
        raise refusal(progressed, item.task_id)

    def _defer(self, deferred: Deferred) -> None:
        task_id = deferred.item.task_id
        self._deferred.setdefault(task_id, deferred)
        if task_id not in self._timers:
            self._timers[task_id] = asyncio.create_task(self._write_later(task_id))

    async def _write_later(self, task_id: str) -> None:
        try:
            await asyncio.sleep(self.interval)
        finally:
            self._timers.pop(task_id, None)
        deferred = self._deferred.pop(task_id, None)
        if deferred is not None:
            await self._write(deferred, self.interval)

    async def _write(self, deferred: Deferred, every: float) -> None:
        try:
            progressed = await self.store.progress(
                deferred.item, deferred.actor, every, ended_ok=True
            )
            if progressed.judged.verdict == Verdict.APPLY:
                await self.publisher.publish([progress_event(progressed, deferred.item)])
            elif progressed.judged.verdict == Verdict.THROTTLED:  # another replica wrote
                self._defer(deferred)
            # Otherwise the attempt is over for good (another attempt, the task gone).
        except Exception:  # a deferred write has no caller to tell; it must not leak
            log.warning("deferred progress of task %s not stored", deferred.item.task_id)

    async def close(self) -> None:
        """Write every deferred report now (the server stops)."""
        for timer in list(self._timers.values()):
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        deferred, self._deferred = list(self._deferred.values()), {}
        for item in deferred:
            await self._write(item, 0.0)
