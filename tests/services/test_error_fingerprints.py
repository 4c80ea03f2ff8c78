"""Every way a task becomes failed stores its error's fingerprint, and a retry clears it
(services/tasks/fingerprints.py; tasks.error_fingerprint), on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.db.models import Job, Task
from app.services.actors import Actor
from app.services.tasks.fingerprints import failure_label, fingerprint_of
from app.services.tasks.states import EDGES, Cause, TaskStatus
from app.services.tasks.store import Report
from app.services.tasks.transitions import INTERNAL_TIMEOUT, WORKER_DISCONNECTED
from app.state import Core
from tests.factories import make_job, make_task, make_user, make_worker

ADMIN = Actor(id=uuid.UUID(int=0), role="admin")
TRACE = 'Traceback (most recent call last):\n  File "w.py", line 3, in run\n    boom()\n'
LONG_AGO = timedelta(minutes=10)


async def _row(core: Core, task_id: uuid.UUID) -> Task:
    async with core.sessionmaker() as db:
        return (await db.execute(select(Task).where(Task.id == task_id))).scalar_one()


async def _held_task(
    core: Core, *, max_attempts: int = 1, attempt: int = 1, room: str = "r1"
) -> tuple[Task, uuid.UUID]:
    """A running task held by a worker; returns it and the worker's id."""
    async with core.sessionmaker() as db:
        worker = await make_worker(db, await make_user(db))
        job = await make_job(db, room, workers=(worker,))
        task = await make_task(
            db,
            job,
            status="running",
            worker_id=worker.id,
            max_attempts=max_attempts,
            attempt=attempt,
            started_at=datetime.now(UTC) - LONG_AGO,
        )
        await db.commit()
    return task, worker.id


def _failure(task: Task, worker_id: uuid.UUID, error: str, traceback: str | None) -> Report:
    return Report(
        str(task.id),
        TaskStatus.FAILED,
        error=error,
        attempt=task.attempt,
        worker_id=str(worker_id),
        traceback=traceback,
    )


def test_fingerprint_is_the_type_and_top_frame_or_the_first_line() -> None:
    assert failure_label("ValueError: a 1", TRACE) == 'ValueError @ File "w.py", line 3, in run'
    assert fingerprint_of("ValueError: a 1", TRACE) == fingerprint_of("ValueError: a 2", TRACE)
    assert failure_label("KeyError: 'x'\nmore", None) == "KeyError: 'x'"
    assert fingerprint_of("KeyError: 'x'\nmore", None) == fingerprint_of("KeyError: 'x'", None)


def test_a_blank_error_is_an_unknown_error() -> None:
    assert failure_label(None, None) == failure_label("  \n ", None) == "unknown error"


def test_fingerprint_is_sixteen_hex_digits() -> None:
    found = fingerprint_of("x" * 100_000, TRACE * 50)
    assert len(found) == 16
    assert set(found) <= set("0123456789abcdef")


async def test_a_failure_report_stores_the_fingerprint_of_its_error_and_traceback(
    core: Core,
) -> None:
    task, worker_id = await _held_task(core)
    await core.tasks.report(ADMIN, _failure(task, worker_id, "ValueError: bad 7", TRACE))
    row = await _row(core, task.id)
    assert row.status == "failed"
    assert row.error_fingerprint == fingerprint_of("ValueError: bad 7", TRACE)


async def test_a_failure_report_without_traceback_is_fingerprinted_by_its_first_line(
    core: Core,
) -> None:
    """As the @internal executor reports its failures (no traceback, no worker)."""
    task, _ = await _held_task(core)
    await core.tasks.report(ADMIN, Report(str(task.id), TaskStatus.FAILED, error="boom\nmore"))
    assert (await _row(core, task.id)).error_fingerprint == fingerprint_of("boom", None)


async def test_a_failure_with_attempts_left_is_requeued_without_a_fingerprint(core: Core) -> None:
    task, worker_id = await _held_task(core, max_attempts=2)
    await core.tasks.report(ADMIN, _failure(task, worker_id, "ValueError: x", TRACE))
    row = await _row(core, task.id)
    assert (row.status, row.error_fingerprint) == ("pending", None)


async def test_the_last_attempts_failure_stores_the_fingerprint(core: Core) -> None:
    """Retries exhausted: the failure report of the final attempt (2 of 2)."""
    task, worker_id = await _held_task(core, max_attempts=2, attempt=2)
    await core.tasks.report(ADMIN, _failure(task, worker_id, "KeyError: 'k'", TRACE))
    row = await _row(core, task.id)
    assert (row.status, row.error_fingerprint) == ("failed", fingerprint_of("KeyError: 'k'", TRACE))


async def test_a_batch_report_fingerprints_each_failure(core: Core) -> None:
    first, worker_a = await _held_task(core)
    second, worker_b = await _held_task(core, room="r2")
    await core.tasks.report_many(
        ADMIN,
        [_failure(first, worker_a, "A: 1", None), _failure(second, worker_b, "B: 2", TRACE)],
    )
    assert (await _row(core, first.id)).error_fingerprint == fingerprint_of("A: 1", None)
    assert (await _row(core, second.id)).error_fingerprint == fingerprint_of("B: 2", TRACE)


async def test_a_lost_worker_fingerprints_the_tasks_it_fails(core: Core) -> None:
    task, worker_id = await _held_task(core)
    await core.tasks.lose_workers([worker_id])
    row = await _row(core, task.id)
    assert (row.status, row.error_fingerprint) == (
        "failed",
        fingerprint_of(WORKER_DISCONNECTED, None),
    )


async def test_a_timeout_fingerprints_the_tasks_it_fails(core: Core) -> None:
    task, _ = await _held_task(core)
    async with core.sessionmaker() as db:
        job = await db.get(Job, task.job_id)
        assert job is not None
        job.timeout_seconds = 1.5
        await db.commit()
    await core.tasks.fail_timed_out(0.0)
    row = await _row(core, task.id)
    assert row.status == "failed"
    assert row.error == "timed out after 1.5 s (no report from the worker)"
    assert row.error_fingerprint == fingerprint_of(row.error, None)


async def test_a_stuck_internal_task_is_fingerprinted(core: Core) -> None:
    async with core.sessionmaker() as db:
        job = await make_job(db, "@internal", "modifiers", "Stuck")
        task = await make_task(
            db, job, room_id="r1", status="running", started_at=datetime.now(UTC) - LONG_AGO
        )
        await db.commit()
    await core.tasks.fail_stuck_internal(60.0)
    row = await _row(core, task.id)
    assert (row.status, row.error_fingerprint) == ("failed", fingerprint_of(INTERNAL_TIMEOUT, None))


async def test_a_retry_clears_the_fingerprint(core: Core) -> None:
    task, worker_id = await _held_task(core)
    await core.tasks.report(ADMIN, _failure(task, worker_id, "ValueError: x", TRACE))
    await core.tasks.retry(ADMIN, task.id)
    row = await _row(core, task.id)
    assert (row.status, row.error_fingerprint) == ("pending", None)


def test_only_a_retry_leaves_failed() -> None:
    """Why clearing on retry is enough: the state table has no other edge out of failed
    (a new edge out of it must clear the fingerprint too)."""
    leaving = {cause for cause, edges in EDGES.items() for old, _ in edges if old == "failed"}
    assert leaving == {Cause.RETRY}
