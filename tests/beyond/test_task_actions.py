"""POST /tasks/{id}/cancel and /tasks/{id}/retry."""

from __future__ import annotations

from tests.beyond.conftest import Api


async def _cancel(api: Api, headers: dict[str, str], task_id: str) -> int:
    response = await api.client.post(f"/v1/joblib/tasks/{task_id}/cancel", headers=headers)
    return response.status_code


async def test_submitter_cancels_a_pending_task(
    api: Api, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    task = (await api.submit(other_headers)).json()
    response = await api.client.post(f"/v1/joblib/tasks/{task['id']}/cancel", headers=other_headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["completed_at"] is not None


async def test_cancelled_running_task_rejects_its_worker_and_never_completes(
    api: Api, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task = (await api.submit(other_headers)).json()
    await api.claim(user_headers, worker)
    await api.patch(user_headers, task["id"], status="running")
    assert await _cancel(api, other_headers, task["id"]) == 200
    late = await api.patch(user_headers, task["id"], status="completed")
    assert late.status_code == 409
    assert (await api.get(user_headers, task["id"]))["status"] == "cancelled"


async def test_worker_owner_of_the_job_may_cancel(
    api: Api, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    task = (await api.submit(other_headers)).json()
    assert await _cancel(api, user_headers, task["id"]) == 200


async def test_stranger_and_viewer_may_not_cancel(
    api: Api,
    user_headers: dict[str, str],
    other_headers: dict[str, str],
    viewer_headers: dict[str, str],
) -> None:
    await api.register(user_headers)
    task = (await api.submit(user_headers)).json()
    assert await _cancel(api, other_headers, task["id"]) == 403
    assert await _cancel(api, viewer_headers, task["id"]) == 403
    assert (await api.get(user_headers, task["id"]))["status"] == "pending"


async def test_admin_may_cancel_and_a_terminal_task_is_409(
    api: Api, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    task = (await api.submit(user_headers)).json()
    assert await _cancel(api, admin_headers, task["id"]) == 200
    assert await _cancel(api, admin_headers, task["id"]) == 409


async def test_retry_of_a_failed_task_is_a_new_pending_attempt(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task = (await api.submit(user_headers)).json()
    await api.claim(user_headers, worker)
    await api.patch(user_headers, task["id"], status="failed", error="boom")
    response = await api.client.post(f"/v1/joblib/tasks/{task['id']}/retry", headers=user_headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempt"], body["worker_id"]) == ("pending", 2, None)
    assert body["queue_position"] == 1
    claimed = await api.claim(user_headers, worker)
    assert claimed is not None
    assert claimed["id"] == task["id"]


async def test_retry_of_a_cancelled_task_works_and_of_a_pending_task_is_409(
    api: Api, user_headers: dict[str, str], viewer_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    task = (await api.submit(user_headers)).json()
    retry = f"/v1/joblib/tasks/{task['id']}/retry"
    assert (await api.client.post(retry, headers=user_headers)).status_code == 409
    await _cancel(api, user_headers, task["id"])
    assert (await api.client.post(retry, headers=viewer_headers)).status_code == 403
    assert (await api.client.post(retry, headers=user_headers)).status_code == 200
