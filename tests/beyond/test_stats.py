"""GET /stats and /rooms/{room}/stats."""

from __future__ import annotations

from typing import Any

from tests.beyond.conftest import JOB, Api


def _job(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(job for job in body["jobs"] if job["job_name"] == name)
    return found


async def test_stats_count_tasks_by_status_per_job_with_recent_finishes(
    api: Api, user_headers: dict[str, str], viewer_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    for _ in range(3):
        await api.submit(user_headers)
    done = await api.claim(user_headers, worker)
    broken = await api.claim(user_headers, worker)
    assert done is not None
    assert broken is not None
    await api.patch(user_headers, done["id"], status="running")
    await api.patch(user_headers, done["id"], status="completed")
    await api.patch(user_headers, broken["id"], status="failed", error="x")
    response = await api.client.get("/v1/joblib/stats", headers=viewer_headers)
    assert response.status_code == 200
    job = _job(response.json(), JOB)
    assert job["counts"] == {
        "waiting": 0,
        "pending": 1,
        "claimed": 0,
        "running": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
    }
    assert job["oldest_pending_age_seconds"] >= 0
    assert (job["completed_last_minute"], job["completed_last_hour"]) == (1, 1)
    assert (job["failed_last_minute"], job["failed_last_hour"]) == (1, 1)


async def test_room_stats_cover_only_tasks_submitted_to_the_room(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    await api.submit(user_headers)
    await api.submit(user_headers, room="r2")
    await api.submit(user_headers, room="r2")
    response = await api.client.get("/v1/joblib/rooms/r2/stats", headers=user_headers)
    assert _job(response.json(), JOB)["counts"]["pending"] == 2
    bad = await api.client.get("/v1/joblib/rooms/a:b/stats", headers=user_headers)
    assert bad.status_code == 400
