"""Each service returns the events EVENTS.md's table lists for its operation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Provider, User
from app.services import jobs
from app.services.actors import Actor
from app.services.events import (
    Event,
    JobsInvalidate,
    ProvidersInvalidate,
    TaskAvailable,
    TaskChanged,
    TaskStatusEvent,
)
from app.services.jobs import JobRegistration
from app.services.tasks import claim as claims
from app.services.tasks import submit as submits
from app.services.tasks import transitions
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report, TaskStore, WorkerSelection
from app.services.tasks.submit import Submission
from app.state import Core
from tests.factories import make_user

CATEGORIES = ["modifiers", "selections", "analysis"]


@pytest.fixture
async def session(core: Core) -> AsyncIterator[AsyncSession]:
    async with core.sessionmaker() as session:
        yield session


@pytest.fixture
async def admin(session: AsyncSession) -> Actor:
    user: User = await make_user(session, role="admin")
    await session.commit()
    return Actor(user.id, "admin")


@pytest.fixture
def store(core: Core) -> TaskStore:
    return core.store


def wire(events: list[Event]) -> list[tuple[str, str]]:
    return sorted((e.event_name, e.room) for e in events if e.on_wire)


async def _register(
    session: AsyncSession, actor: Actor, room: str, name: str, worker_id: uuid.UUID | None = None
) -> jobs.Registered:
    spec = JobRegistration("modifiers", name, {}, worker_id)
    registered = await jobs.register(session, actor, room, spec, CATEGORIES)
    await session.commit()  # the task store works on its own connection
    return registered


async def _submit(store: TaskStore, actor: Actor, room: str, job: str) -> submits.Submitted:
    return await submits.submit(store, actor, room, job, [Submission()], ())


async def _claim(store: TaskStore, actor: Actor, worker_id: uuid.UUID) -> Any:
    return await claims.claim(store, actor, worker_id, 1, 300)


async def _lose(store: TaskStore, worker_id: uuid.UUID) -> list[Event]:
    _, events = await transitions.lose_workers(
        store, WorkerSelection([str(worker_id)]), RetryPolicy()
    )
    return events


async def test_register_returns_jobs_invalidate_for_the_path_room(
    session: AsyncSession, admin: Actor
) -> None:
    registered = await _register(session, admin, "@global", "A")
    assert registered.events == [JobsInvalidate("@global")]


async def test_submit_returns_pending_status_wake_up_and_task_available(
    session: AsyncSession, store: TaskStore, admin: Actor
) -> None:
    await _register(session, admin, "r1", "A")
    submitted = await _submit(store, admin, "r2", "r1:modifiers:A")
    task_id = submitted.views[0].task.id
    status, changed, available = submitted.events
    assert isinstance(status, TaskStatusEvent)
    assert (status.status, status.queue_position, status.room) == ("pending", 1, "room:r2")
    assert changed == TaskChanged(task_id=task_id, status="pending")
    assert available == TaskAvailable("r1:modifiers:A", "r2", task_id)


async def test_claim_returns_claimed_status_with_worker(
    session: AsyncSession, store: TaskStore, admin: Actor
) -> None:
    registered = await _register(session, admin, "r1", "A")
    worker_id = registered.view.worker_id
    assert worker_id is not None
    await _submit(store, admin, "r1", "r1:modifiers:A")
    views, events = await _claim(store, admin, worker_id)
    assert len(views) == 1
    status = events[0]
    assert isinstance(status, TaskStatusEvent)
    assert (status.status, status.worker_id, status.room) == ("claimed", str(worker_id), "room:r1")
    assert wire(events) == [("task_status_event", "room:r1")]


async def test_empty_claim_returns_no_events(
    session: AsyncSession, store: TaskStore, admin: Actor
) -> None:
    registered = await _register(session, admin, "r1", "A")
    assert registered.view.worker_id is not None
    views, events = await _claim(store, admin, registered.view.worker_id)
    assert (views, events) == ([], [])


async def test_terminal_update_of_an_orphan_adds_jobs_invalidate(
    session: AsyncSession, store: TaskStore, admin: Actor
) -> None:
    registered = await _register(session, admin, "r1", "A")
    assert registered.view.worker_id is not None
    submitted = await _submit(store, admin, "r9", "r1:modifiers:A")
    await _lose(store, registered.view.worker_id)
    cancel = Report(submitted.views[0].task.id, TaskStatus.CANCELLED)
    _, events = await transitions.report(store, admin, cancel, RetryPolicy())
    assert wire(events) == [("jobs_invalidate", "room:r1"), ("task_status_event", "room:r9")]


async def test_worker_delete_returns_the_cascade_events(
    session: AsyncSession, store: TaskStore, admin: Actor
) -> None:
    first = await _register(session, admin, "@global", "A")
    worker_id = first.view.worker_id
    assert worker_id is not None
    await _register(session, admin, "r2", "B", worker_id)
    await _register(session, admin, "@global", "A")  # another worker keeps A alive
    session.add(
        Provider(
            room_id="r3",
            category="fs",
            name="p",
            full_name="r3:fs:p",
            user_id=admin.id,
            worker_id=worker_id,
        )
    )
    await session.commit()
    await _submit(store, admin, "r5", "@global:modifiers:A")
    [view], _ = await _claim(store, admin, worker_id)
    events = await _lose(store, worker_id)
    failed = [e for e in events if isinstance(e, TaskStatusEvent)]
    assert [(e.id, e.status, e.error, e.worker_id, e.queue_position) for e in failed] == [
        (view.task.id, "failed", "Worker disconnected", str(worker_id), None)
    ]
    assert TaskChanged(task_id=view.task.id, status="failed") in events
    assert ProvidersInvalidate("r3") in events
    # r2's job lost its only worker and has no pending task: soft-deleted, same room.
    assert wire(events) == [
        ("jobs_invalidate", "room:@global"),
        ("jobs_invalidate", "room:r2"),
        ("jobs_invalidate", "room:r2"),
        ("providers_invalidate", "room:r3"),
        ("task_status_event", "room:r5"),
    ]
