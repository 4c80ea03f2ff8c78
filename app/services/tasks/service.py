"""`TaskService`: the task domain bound to one store and one publisher. Every call
commits (in the store) and then publishes its events; routers, the dashboard, presence,
the leader's passes and the @internal executor all go through it."""

from __future__ import annotations

import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.services.actors import Actor
from app.services.events import Event, TaskAvailable
from app.services.json_limits import DEFAULT_LIMITS, JsonLimits
from app.services.payload_schemas import KnownSchemas
from app.services.tasks import claim as claims
from app.services.tasks import dependencies, transitions
from app.services.tasks import events as task_events
from app.services.tasks import submit as submits
from app.services.tasks.events import DUE_ON_SUBMIT_SECONDS
from app.services.tasks.progress import ProgressCoalescer
from app.services.tasks.records import TaskView
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Beat, ProgressReport, Report, TaskStore, WorkerSelection
from app.services.tasks.submit import Submission, Submitted
from app.services.tasks.transitions import Outcome

# A task made due by a transaction that commits after a scheduler pass read its window
# would be missed; re-reading this much of the previous window covers such late commits.
# Wake-ups are idempotent (a worker just claims), so the overlap costs a duplicate event.
DUE_OVERLAP_SECONDS = 5.0


class Publish(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


@dataclass
class TaskService:
    store: TaskStore
    publisher: Publish
    policy: RetryPolicy
    lease_seconds: float
    internal_jobs: Container[str] = frozenset()
    limits: JsonLimits = DEFAULT_LIMITS
    # Which jobs validate their payloads, as this process last saw them.
    schemas: KnownSchemas = field(default_factory=KnownSchemas)
    progress_reports: ProgressCoalescer = field(init=False)

    def __post_init__(self) -> None:
        self.progress_reports = ProgressCoalescer(self.store, self)

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish through the current publisher (tests may swap it)."""
        await self.publisher.publish(events)

    async def _published(self, events: Sequence[Event]) -> None:
        if events:
            await self.publisher.publish(events)
            await self._settle(dependencies.ended_parents(events))

    async def _settle(self, parent_ids: Sequence[str]) -> None:
        """The waiting children of tasks that just ended: pending, or cancelled (which
        settles their own children in turn). After the parents' commit, so a crash in
        between leaves the children to the sweeper's `settle_waiting`."""
        while parent_ids:
            changes = await self.store.settle_children(parent_ids)
            if changes:
                await self.publisher.publish(task_events.of_changes(changes, announce=True))
            parent_ids = dependencies.ended_parents(task_events.changed(c.task) for c in changes)

    async def submit(
        self,
        actor: Actor,
        room_id: str,
        job_name: str,
        submissions: Sequence[Submission],
        readable_by: uuid.UUID | None = None,
    ) -> Submitted:
        """Queue the submissions; parents named in `depends_on` must be readable by
        `readable_by` (None: any task)."""
        submitted = await submits.submit(
            self.store,
            actor,
            room_id,
            job_name,
            submissions,
            self.internal_jobs,
            self.limits,
            readable_by,
            self.schemas,
        )
        await self._published(submitted.events)
        if any(v.task.status == TaskStatus.WAITING for v in submitted.views):
            # A parent that ended between the check and the insert settled before the
            # child's dependency row existed: settle its children again now.
            named = {p for s in submissions for p in s.options.depends_on if isinstance(p, str)}
            await self._settle(sorted(named))
        return submitted

    async def claim(self, actor: Actor, worker_id: uuid.UUID, limit: int = 1) -> list[TaskView]:
        views, events = await claims.claim(self.store, actor, worker_id, limit, self.lease_seconds)
        await self._published(events)
        return views

    async def report(self, actor: Actor, item: Report) -> TaskView:
        view, events = await transitions.report(self.store, actor, item, self.policy)
        await self._published(events)
        return view

    async def report_many(self, actor: Actor, items: Sequence[Report]) -> list[Outcome]:
        outcomes, events = await transitions.report_many(self.store, actor, items, self.policy)
        await self._published(events)
        return outcomes

    async def cancel(self, actor: Actor, task_id: uuid.UUID) -> TaskView:
        view, events = await transitions.cancel(self.store, actor, task_id)
        await self._published(events)
        return view

    async def retry(self, actor: Actor, task_id: uuid.UUID) -> TaskView:
        view, events = await transitions.retry(self.store, actor, task_id)
        await self._published(events)
        return view

    async def release(
        self, actor: Actor, task_id: uuid.UUID, attempt: int, worker_id: uuid.UUID
    ) -> TaskView:
        view, events = await transitions.release(self.store, actor, task_id, attempt, worker_id)
        await self._published(events)
        return view

    async def report_progress(self, actor: Actor, item: ProgressReport) -> bool:
        """A fenced progress report: stored now (True) or deferred (False, see progress)."""
        actor.require_writer()
        return await self.progress_reports.report(actor, item)

    async def get(self, task_id: uuid.UUID) -> TaskView | None:
        return await self.store.get(str(task_id))

    async def heartbeat(self, worker_id: uuid.UUID, actor_id: uuid.UUID) -> Beat:
        return await self.store.heartbeat(str(worker_id), str(actor_id))

    async def lose_workers(
        self, worker_ids: Sequence[uuid.UUID | str], silent_since: datetime | None = None
    ) -> list[str]:
        """Clean up these workers (only those silent since `silent_since`, if given)."""
        selection = WorkerSelection([str(w) for w in worker_ids], silent_since)
        gone, events = await transitions.lose_workers(self.store, selection, self.policy)
        await self._published(events)
        return gone

    async def lose_stale_workers(self, stale_before: datetime) -> list[str]:
        gone, events = await transitions.lose_stale_workers(self.store, stale_before, self.policy)
        await self._published(events)
        return gone

    # --- the leader's passes ---------------------------------------------------------
    async def expire_leases(self) -> None:
        await self._published(await transitions.expire_leases(self.store))

    async def fail_timed_out(self, grace_seconds: float) -> None:
        await self._published(
            await transitions.fail_timed_out(self.store, grace_seconds, self.policy)
        )

    async def fail_stuck_internal(self, older_than_seconds: float) -> None:
        await self._published(await transitions.fail_stuck_internal(self.store, older_than_seconds))

    async def settle_waiting(self, limit: int) -> int:
        """Settle waiting tasks whose parents all ended but were never settled (a crash
        between a parent's end and the settlement); returns how many moved."""
        changes = await self.store.settle_waiting(limit)
        await self._published(task_events.of_changes(changes, announce=True))
        return len(changes)

    async def wake_due(self, since: datetime | None) -> datetime:
        """Wake the workers of tasks that became due since the last pass (delayed submits,
        retries after their backoff); returns the `since` of the next pass."""
        heads, now = await self.store.due_heads(since, DUE_OVERLAP_SECONDS, DUE_ON_SUBMIT_SECONDS)
        await self._published(
            [
                TaskAvailable(job_name=h.job_name, room_id=h.room_id, task_id=h.task_id)
                for h in heads
            ]
        )
        return now
