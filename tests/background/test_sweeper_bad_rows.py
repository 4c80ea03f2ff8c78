"""Issue 18: every sweeper pass survives a bad row (logged, skipped) and still sweeps the
rest. Bad rows are written directly, bypassing validation, as an old database (from
before the 7-day limit on `timeout_seconds`) or a hand edit could hold them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from app.background.sweeper import run_pass
from app.db.models import Task, Worker
from app.services.tasks.transitions import WORKER_DISCONNECTED
from app.state import Core
from tests.factories import make_job, make_task, make_user, make_worker

LONG_AGO = timedelta(minutes=10)
# What each database can hold in a float column; SQLite keeps a text as it is (its
# columns are dynamically typed), PostgreSQL holds NaN and the infinities.
BAD_TIMEOUTS: dict[str, list[Any]] = {
    "sqlite": [1e300, float("inf"), -1e300, 0.0, "garbage"],
    "postgresql": [1e300, float("inf"), -1e300, 0.0, float("nan")],
}


def ago(delta: timedelta) -> datetime:
    return datetime.now(UTC) - delta


async def status_of(core: Core, task: Task) -> tuple[str, str | None]:
    async with core.sessionmaker() as session:
        row = (await session.execute(select(Task).where(Task.id == task.id))).scalar_one()
        return row.status, row.error


async def scene(core: Core, bad_timeouts: list[Any]) -> tuple[list[Task], Task, Task]:
    """Running tasks of jobs with bad timeouts, one task past a sane timeout, and a task
    of a worker without a heartbeat."""
    async with core.sessionmaker() as session:
        user = await make_user(session)
        live = await make_worker(session, user)
        bad: list[Task] = []
        for index, value in enumerate(bad_timeouts):
            job = await make_job(session, "r1", name=f"Bad{index}", workers=(live,))
            # Raw SQL: the ORM's Float would not even pass a text on.
            await session.execute(
                text("UPDATE jobs SET timeout_seconds = :value WHERE full_name = :name"),
                {"value": value, "name": job.full_name},
            )
            bad.append(
                await make_task(
                    session, job, status="running", worker_id=live.id, started_at=ago(LONG_AGO)
                )
            )
        job = await make_job(session, "r1", name="Good", workers=(live,))
        job.timeout_seconds = 1.0
        overdue = await make_task(
            session, job, status="running", worker_id=live.id, started_at=ago(LONG_AGO)
        )
        gone = await make_worker(session, user)
        gone.last_heartbeat = ago(LONG_AGO)
        lost_job = await make_job(session, "r2", workers=(gone,))
        lost = await make_task(session, lost_job, status="running", worker_id=gone.id)
        await session.commit()
    return bad, overdue, lost


async def test_jobs_with_absurd_timeouts_neither_stop_the_pass_nor_fail_their_tasks(
    core: Core, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The finding: `timeout_seconds` 1e300 made the sweeper raise OverflowError, which
    aborted the whole pass (nothing else swept while that row existed)."""
    bad, overdue, lost = await scene(core, BAD_TIMEOUTS[backend])
    with caplog.at_level(logging.WARNING):
        await run_pass(core.settings, core.tasks, core.publisher)
    assert not [r for r in caplog.records if "sweeper step" in r.getMessage()]
    assert await status_of(core, overdue) == (
        "failed",
        "timed out after 1 s (no report from the worker)",
    )
    assert await status_of(core, lost) == ("failed", WORKER_DISCONNECTED)
    # Out of range is no timeout at all (or one capped far in the future): still running.
    for task in bad:
        assert (await status_of(core, task))[0] == "running", task
    if backend == "sqlite":  # the text: logged with its task's id, skipped
        unreadable = str(bad[-1].id)
        assert any(unreadable in r.getMessage() for r in caplog.records), caplog.text


async def test_a_failing_step_is_logged_and_the_pass_goes_on(
    core: Core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A step that fails (whatever the row) costs only itself: the later steps still run."""
    _, overdue, lost = await scene(core, [])

    async def broken(_: float) -> None:
        raise RuntimeError("an unreadable row")

    monkeypatch.setattr(core.tasks, "fail_stuck_internal", broken)
    with caplog.at_level(logging.ERROR, logger="app.background.sweeper"):
        await run_pass(core.settings, core.tasks, core.publisher)
    assert (await status_of(core, overdue))[0] == "failed"
    assert (await status_of(core, lost))[0] == "failed"
    assert any("fail_stuck_internal" in r.getMessage() for r in caplog.records)
    async with core.sessionmaker() as session:
        assert (await session.scalars(select(Worker))).all() != []  # the live one stays
