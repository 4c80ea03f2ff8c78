"""Engine settings per dialect and timezone-aware UTC timestamps (issue 2 §3)."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import text

from app.db.session import SQLITE_BUSY_TIMEOUT_MS, make_engine, make_sessionmaker
from tests.factories import make_user


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(database_url: str) -> None:
    engine = make_engine(database_url)
    async with engine.connect() as connection:
        journal = await connection.scalar(text("PRAGMA journal_mode"))
        foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
        busy_timeout = await connection.scalar(text("PRAGMA busy_timeout"))
    await engine.dispose()
    assert (journal, foreign_keys, busy_timeout) == ("wal", 1, SQLITE_BUSY_TIMEOUT_MS)


async def test_timestamps_read_back_as_aware_utc(database_url: str) -> None:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        user = await make_user(session, "tz@example.com")
        await session.commit()
        await session.refresh(user)
        created = user.created_at
    await engine.dispose()
    assert created.tzinfo is not None
    assert created.utcoffset() == UTC.utcoffset(None)
