"""Retries with backoff, and fencing of reports from attempts that are no longer current."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from app.db.models import Task
from app.db.types import utcnow
from app.state import Core
from tests.beyond.conftest import Api


async def _running(api: Api, headers: dict[str, str], worker: str, **submit: object) -> str:
    submitted = await api.submit(headers, **submit)
    assert submitted.status_code == 202, submitted.text
    claimed = await api.claim(headers, worker)
    assert claimed is not None
    assert (await api.patch(headers, claimed["id"], status="running")).status_code == 200
    task_id: str = claimed["id"]
    return task_id


async def test_worker_failure_with_attempts_left_returns_task_to_pending(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker, max_attempts=3)
    response = await api.patch(user_headers, task_id, status="failed", error="boom")
    assert response.status_code == 200
    task = response.json()
    # The error stays with the attempt: a task pending for its retry shows none.
    assert (task["status"], task["attempt"], task["error"]) == ("pending", 2, None)
    assert task["worker_id"] is None
    assert task["completed_at"] is None
    # Due after the backoff (base 2 s * 2^1, jittered to at least half): not claimable yet.
    assert datetime.fromisoformat(task["run_at"]) > datetime.fromisoformat(task["created_at"])
    assert await api.claim(user_headers, worker) is None


async def test_failure_on_the_last_attempt_fails_with_the_last_error(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker, max_attempts=1)
    response = await api.patch(user_headers, task_id, status="failed", error="last")
    assert (response.json()["status"], response.json()["error"]) == ("failed", "last")


async def test_worker_loss_retries_a_task_with_attempts_left(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker, max_attempts=2)
    deleted = await api.client.delete(f"/v1/joblib/workers/{worker}", headers=user_headers)
    assert deleted.status_code == 204
    task = await api.get(user_headers, task_id)
    assert (task["status"], task["attempt"], task["error"]) == ("pending", 2, None)
    attempts = await api.client.get(f"/v1/joblib/tasks/{task_id}/attempts", headers=user_headers)
    assert attempts.json()["items"][0]["error"] == "Worker disconnected"


async def test_worker_loss_on_the_last_attempt_fails_the_task(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker)
    await api.client.delete(f"/v1/joblib/workers/{worker}", headers=user_headers)
    task = await api.get(user_headers, task_id)
    assert (task["status"], task["error"]) == ("failed", "Worker disconnected")


async def test_report_naming_an_older_attempt_is_409_stale_attempt(
    api: Api, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker, max_attempts=2)
    await api.patch(user_headers, task_id, status="failed", error="first")
    # The admin stands in for the retried attempt's worker: claimed again, attempt 2.
    assert (await api.patch(admin_headers, task_id, status="claimed")).status_code == 200
    stale = await api.patch(user_headers, task_id, status="running", attempt=1)
    assert stale.status_code == 409
    assert stale.json()["type"] == "/v1/problems/stale-attempt"
    current = await api.patch(admin_headers, task_id, status="running", attempt=2)
    assert current.status_code == 200


async def test_report_naming_another_worker_is_409_stale_attempt(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker)
    other = await api.register(user_headers)
    stale = await api.patch(user_headers, task_id, status="completed", worker_id=other)
    assert stale.status_code == 409
    assert stale.json()["type"] == "/v1/problems/stale-attempt"


async def test_old_worker_without_attempt_cannot_complete_a_retried_task(
    api: Api, user_headers: dict[str, str]
) -> None:
    """The zndraw client sends no attempt: the state machine fences it instead."""
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker, max_attempts=2)
    await api.patch(user_headers, task_id, status="failed", error="first")
    late = await api.patch(user_headers, task_id, status="completed")
    assert late.status_code in (403, 409)
    assert (await api.get(user_headers, task_id))["status"] == "pending"


async def test_retried_task_is_claimable_again_once_due(
    api: Api, user_headers: dict[str, str], core: Core
) -> None:
    worker = await api.register(user_headers)
    task_id = await _running(api, user_headers, worker, max_attempts=2)
    await api.patch(user_headers, task_id, status="failed", error="first")
    async with core.sessionmaker() as session:
        await session.execute(update(Task).values(run_at=utcnow()))
        await session.commit()
    claimed = await api.claim(user_headers, worker)
    assert claimed is not None
    assert (claimed["id"], claimed["attempt"]) == (task_id, 2)
