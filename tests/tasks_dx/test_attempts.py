"""GET /tasks/{id}/attempts (beyond the contract): every attempt of a task, oldest first,
whoever ended it (a report, a cancel, a release, the sweeper), with its worker, times,
outcome, error and traceback; and a task's `error` only while it is failed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db.models import TaskAttempt
from app.state import Core
from tests.tasks_dx.calls import (
    JOBLIB,
    attempts,
    claim_one,
    finish,
    read,
    start,
    submit,
    worker,
)

Headers = dict[str, str]
LEASE = 0.3
TRACEBACK = 'Traceback (most recent call last):\n  File "job.py", line 3\nValueError: boom'


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retry_backoff_base_seconds": 0.0, "claim_lease_seconds": LEASE}


async def claimed(
    client: httpx.AsyncClient, headers: Headers, **options: Any
) -> tuple[dict[str, Any], str]:
    """A task submitted with `options`, claimed by a new worker: (task, worker id)."""
    worker_id = await worker(client, headers)
    await submit(client, headers, **options)
    return await claim_one(client, headers, worker_id), worker_id


async def failed_once(client: httpx.AsyncClient, headers: Headers) -> tuple[str, str]:
    """A task of two attempts whose first failed with an error and a traceback."""
    task, worker_id = await claimed(client, headers, max_attempts=2)
    await start(client, headers, task, worker_id)
    await finish(client, headers, task, worker_id, "failed", error="boom", traceback=TRACEBACK)
    return task["id"], worker_id


async def test_a_retry_that_succeeds_lists_both_attempts_and_clears_the_error(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, first_worker = await failed_once(client, user_headers)
    second = await claim_one(client, user_headers, first_worker)
    assert (second["id"], second["attempt"]) == (task_id, 2)
    await start(client, user_headers, second, first_worker)
    await finish(client, user_headers, second, first_worker, "completed", result=1)
    first, last = await attempts(client, user_headers, task_id)
    assert (first["attempt"], first["outcome"], first["error"]) == (1, "failed", "boom")
    assert first["traceback"] == TRACEBACK
    assert first["worker_id"] == first_worker
    assert first["started_at"] is not None
    assert first["ended_at"] is not None
    assert (last["attempt"], last["outcome"], last["error"], last["traceback"]) == (
        2,
        "completed",
        None,
        None,
    )
    task = await read(client, user_headers, task_id)
    assert (task["status"], task["error"]) == ("completed", None)


async def test_a_task_pending_for_its_retry_shows_no_error(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, _ = await failed_once(client, user_headers)
    task = await read(client, user_headers, task_id)
    assert (task["status"], task["attempt"], task["error"]) == ("pending", 2, None)
    [first] = await attempts(client, user_headers, task_id)
    assert first["error"] == "boom"


async def test_a_task_cancelled_while_pending_for_its_retry_shows_no_error(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, _ = await failed_once(client, user_headers)
    cancel = await client.post(f"{JOBLIB}/tasks/{task_id}/cancel", headers=user_headers)
    assert (cancel.json()["status"], cancel.json()["error"]) == ("cancelled", None)
    assert [a["error"] for a in await attempts(client, user_headers, task_id)] == ["boom"]


async def test_a_failed_task_shows_its_last_attempts_error(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id, worker_id = await failed_once(client, user_headers)
    second = await claim_one(client, user_headers, worker_id)
    await finish(client, user_headers, second, worker_id, "failed", error="again")
    task = await read(client, user_headers, task_id)
    assert (task["status"], task["error"]) == ("failed", "again")
    assert [a["error"] for a in await attempts(client, user_headers, task_id)] == [
        "boom",
        "again",
    ]


async def test_the_running_attempt_is_listed_last(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task, worker_id = await claimed(client, user_headers)
    [held] = await attempts(client, user_headers, task["id"])
    assert (held["attempt"], held["outcome"], held["worker_id"]) == (1, "claimed", worker_id)
    assert held["ended_at"] is None
    await start(client, user_headers, task, worker_id)
    [running] = await attempts(client, user_headers, task["id"])
    assert running["outcome"] == "running"
    assert running["started_at"] is not None


async def test_a_pending_task_has_no_attempts(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await worker(client, user_headers)
    response = await client.post(
        f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:Echo", json={"payload": {}}, headers=user_headers
    )
    assert await attempts(client, user_headers, response.json()["id"]) == []


async def test_a_lost_worker_ends_its_attempt(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    task, worker_id = await claimed(client, user_headers, max_attempts=2)
    await start(client, user_headers, task, worker_id)
    await core.tasks.lose_workers([worker_id])
    [lost] = await attempts(client, user_headers, task["id"])
    assert (lost["outcome"], lost["error"], lost["worker_id"]) == (
        "failed",
        "Worker disconnected",
        worker_id,
    )
    assert (await read(client, user_headers, task["id"]))["error"] is None  # pending again


async def test_an_expired_lease_ends_its_attempt(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    task, worker_id = await claimed(client, user_headers)
    await asyncio.sleep(LEASE + 0.1)
    await core.tasks.expire_leases()
    [expired] = await attempts(client, user_headers, task["id"])
    assert (expired["attempt"], expired["outcome"], expired["worker_id"]) == (
        1,
        "expired",
        worker_id,
    )
    assert expired["started_at"] is None


async def test_a_timed_out_task_ends_its_attempt(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    registered = await client.put(
        f"{JOBLIB}/rooms/r1/jobs",
        json={"category": "modifiers", "name": "Slow", "timeout_seconds": 0.1},
        headers=user_headers,
    )
    worker_id = registered.json()["worker_id"]
    slow = await client.post(
        f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:Slow", json={"payload": {}}, headers=user_headers
    )
    task = await claim_one(client, user_headers, worker_id)
    assert task["id"] == slow.json()["id"]
    await start(client, user_headers, task, worker_id)
    await asyncio.sleep(0.3)
    await core.tasks.fail_timed_out(0.0)
    [timed_out] = await attempts(client, user_headers, task["id"])
    assert timed_out["outcome"] == "failed"
    assert timed_out["error"].startswith("timed out after 0.1 s")


async def test_a_cancel_ends_the_running_attempt(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task, worker_id = await claimed(client, user_headers)
    await start(client, user_headers, task, worker_id)
    cancel = await client.post(f"{JOBLIB}/tasks/{task['id']}/cancel", headers=user_headers)
    assert cancel.status_code == 200, cancel.text
    [cancelled] = await attempts(client, user_headers, task["id"])
    assert (cancelled["outcome"], cancelled["error"]) == ("cancelled", None)


async def test_a_release_ends_the_attempt_without_spending_one(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task, worker_id = await claimed(client, user_headers)
    body = {"worker_id": worker_id, "attempt": 1}
    released = await client.post(
        f"{JOBLIB}/tasks/{task['id']}/release", json=body, headers=user_headers
    )
    assert released.status_code == 200, released.text
    [ended] = await attempts(client, user_headers, task["id"])
    assert ended["outcome"] == "released"


async def test_attempts_of_an_unknown_task_are_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    response = await client.get(f"{JOBLIB}/tasks/{unknown}/attempts", headers=user_headers)
    assert response.status_code == 404
    assert response.json()["type"] == "/v1/problems/task-not-found"


async def test_retention_deletes_the_attempts_with_their_task(
    client: httpx.AsyncClient, user_headers: Headers, core: Core
) -> None:
    task, worker_id = await claimed(client, user_headers)
    await start(client, user_headers, task, worker_id)
    await finish(client, user_headers, task, worker_id, "completed")
    await asyncio.sleep(0.05)
    assert await core.store.delete_finished(0.0, 100) == 1
    async with core.sessionmaker() as session:
        left = await session.scalar(select(func.count()).select_from(TaskAttempt))
    assert left == 0


class TestReadScope:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"task_read_scope": "own"}

    async def test_another_users_task_answers_as_get_task_does(
        self, client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
    ) -> None:
        task, _ = await claimed(client, user_headers)
        for path in ("", "/attempts"):
            mine = await client.get(f"{JOBLIB}/tasks/{task['id']}{path}", headers=user_headers)
            theirs = await client.get(f"{JOBLIB}/tasks/{task['id']}{path}", headers=other_headers)
            assert mine.status_code == 200
            assert theirs.status_code == 404
            assert theirs.json()["type"] == "/v1/problems/task-not-found"
