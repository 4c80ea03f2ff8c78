"""Migration 0010 on both databases: the column and index come and go, and the tasks that
failed before it are fingerprinted by the upgrade, in batches, as the task store would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.db import migrate
from app.db.models import Task
from app.db.session import make_engine
from app.services.tasks.fingerprints import fingerprint_of
from tests.factories import failed_rows, make_job, make_task

TRACE = 'Traceback (most recent call last):\n  File "w.py", line 3, in run\n    boom()\n'


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    found = make_engine(database_url)
    yield found
    await found.dispose()


async def _columns_and_indexes(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: (
                {col["name"] for col in inspect(c).get_columns("tasks")},
                {ix["name"] for ix in inspect(c).get_indexes("tasks")},
            )
        )


async def test_downgrade_drops_the_column_and_its_index(engine: AsyncEngine) -> None:
    await migrate.downgrade_async(engine, "0009")
    columns, indexes = await _columns_and_indexes(engine)
    assert "error_fingerprint" not in columns
    assert "ix_tasks_failed_fingerprint" not in indexes
    await migrate.upgrade_async(engine)
    columns, indexes = await _columns_and_indexes(engine)
    assert "error_fingerprint" in columns
    assert "ix_tasks_failed_fingerprint" in indexes


async def test_upgrade_fingerprints_the_tasks_that_failed_before_it(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as db:
        job = await make_job(db)
        failed = [
            await make_task(db, job, status="failed", error=f"ValueError: {n}", traceback=TRACE)
            for n in range(3)
        ]
        failed.append(await make_task(db, job, status="failed", error="KeyError: 'k'\nmore"))
        done = await make_task(db, job, status="completed")
        # More than one backfill batch (1,000 rows).
        db.add_all(failed_rows(job, ["boom"] * 1001))
        await db.execute(update(Task).values(error_fingerprint=None))
        await db.commit()
    await migrate.downgrade_async(engine, "0009")
    await migrate.upgrade_async(engine)
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, error_fingerprint FROM tasks"))).all()
    found = {str(task_id).replace("-", ""): fingerprint for task_id, fingerprint in rows}
    for task in failed:
        assert found[task.id.hex] == fingerprint_of(task.error, task.traceback)
    assert found[done.id.hex] is None
    assert sum(f == fingerprint_of("boom", None) for f in found.values()) == 1001
