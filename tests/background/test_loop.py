"""The server runs the sweeper by itself when background work is enabled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db.models import Worker
from app.state import Core
from tests.factories import make_user, make_worker


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"background_enabled": True, "sweeper_interval_seconds": 0.1}


async def test_server_sweeps_stale_workers_on_its_own(core: Core) -> None:
    async with core.sessionmaker() as session:
        worker = await make_worker(session, await make_user(session))
        worker.last_heartbeat = datetime.now(UTC) - timedelta(minutes=5)
        await session.commit()
    for _ in range(100):
        async with core.sessionmaker() as session:
            if await session.get(Worker, worker.id) is None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the stale worker was never swept")
