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
    return {
        "background_enabled": True,
        "sweeper_interval_seconds": 0.1,
        "scheduler_interval_seconds": 0.1,
    }


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


async def test_server_wakes_workers_when_a_delayed_task_becomes_due(
    core: Core, client: Any, user_headers: dict[str, str]
) -> None:
    registered = await client.put(
        "/v1/joblib/rooms/r1/jobs",
        json={"category": "modifiers", "name": "Later"},
        headers=user_headers,
    )
    assert registered.status_code == 201
    published: list[Any] = []
    original = core.publisher.publish

    async def recording(events: Any) -> None:
        events = list(events)
        published.extend(events)
        await original(events)

    core.publisher.publish = recording  # type: ignore[method-assign]
    submitted = await client.post(
        "/v1/joblib/rooms/r1/tasks/r1:modifiers:Later",
        json={"payload": {}, "delay_seconds": 0.5},
        headers=user_headers,
    )
    task_id = submitted.json()["id"]
    published.clear()  # the submit's own wake-up does not count
    for _ in range(60):
        if any(getattr(e, "task_id", None) == task_id for e in published):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no task_available once the delayed task became due")
