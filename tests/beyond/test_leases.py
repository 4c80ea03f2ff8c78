"""Claim leases: a claim whose answer never reached its worker strands nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.state import Core
from tests.beyond.conftest import Api
from tests.recorder import Recorder

LEASE = 0.2


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"claim_lease_seconds": LEASE}


async def expired(core: Core) -> None:
    """What the leader's sweep does once the lease has run out."""
    await asyncio.sleep(LEASE + 0.1)
    await core.tasks.expire_leases()


async def test_a_claim_whose_answer_was_lost_is_claimable_again_after_its_lease(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    first = await api.register(user_headers)
    second = await api.register(user_headers)
    task_id = (await api.submit(user_headers)).json()["id"]
    lost = await api.claim(user_headers, first)  # committed; pretend the answer was lost
    assert lost is not None
    assert await api.claim(user_headers, second) is None
    await expired(core)
    again = await api.claim(user_headers, second)
    assert again is not None
    assert (again["id"], again["attempt"], again["worker_id"]) == (task_id, 2, second)


async def test_an_expired_claim_spends_no_attempt(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    task_id = (await api.submit(user_headers, max_attempts=1)).json()["id"]
    assert await api.claim(user_headers, worker) is not None
    await expired(core)
    task = await api.get(user_headers, task_id)
    assert (task["status"], task["attempt"], task["max_attempts"]) == ("pending", 2, 2)


async def test_the_stale_claims_reports_are_refused_after_expiry(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    await api.submit(user_headers)
    stale = await api.claim(user_headers, worker)
    assert stale is not None
    await expired(core)
    fenced = await api.patch(
        user_headers, stale["id"], status="running", attempt=1, worker_id=worker
    )
    assert (fenced.status_code, fenced.json()["type"]) == (409, "/v1/problems/stale-attempt")
    unfenced = await api.patch(user_headers, stale["id"], status="running")
    assert unfenced.status_code in (403, 409)  # no worker holds it; not the caller's to run


async def test_a_running_task_keeps_its_worker_past_the_lease(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    task_id = (await api.submit(user_headers)).json()["id"]
    assert await api.claim(user_headers, worker) is not None
    await api.patch(user_headers, task_id, status="running")
    await expired(core)
    task = await api.get(user_headers, task_id)
    assert (task["status"], task["worker_id"], task["attempt"]) == ("running", worker, 1)


async def test_an_expired_claim_wakes_the_jobs_workers(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    task_id = (await api.submit(user_headers)).json()["id"]
    assert await api.claim(user_headers, worker) is not None
    recorder = Recorder.install(core)
    await expired(core)
    available = [(room, payload["task_id"]) for room, payload in recorder.sent("task_available")]
    assert available == [("jobs:r1:modifiers:Echo", task_id)]
