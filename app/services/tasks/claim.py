"""Claim: hand the next claimable tasks of a worker's jobs to it (one statement)."""

from __future__ import annotations

import uuid

from app.errors import Forbidden, WorkerNotFound
from app.services.actors import Actor
from app.services.events import Event
from app.services.tasks import events
from app.services.tasks.records import TaskView
from app.services.tasks.store import TaskStore

MAX_CLAIM_BATCH = 100


async def claim(
    store: TaskStore, actor: Actor, worker_id: uuid.UUID, limit: int, lease_seconds: float
) -> tuple[list[TaskView], list[Event]]:
    """Up to `limit` tasks in claim order (priority, due time, insertion), each with a
    lease; none when nothing is claimable. Only the worker's owner may claim for it (no
    superuser bypass, REST.md). No task is ever handed to two claimers."""
    actor.require_writer()
    claimed = await store.claim(str(worker_id), str(actor.id), limit, lease_seconds)
    if claimed.owner is None:
        raise WorkerNotFound(f"Worker {worker_id} not found")
    if claimed.owner != str(actor.id):
        raise Forbidden("Worker belongs to a different user")
    return [c.view for c in claimed.changes], events.of_changes(claimed.changes)
