"""POST /rooms/{room}/tasks/{job}/bulk: all or nothing, tasks in order."""

from __future__ import annotations

from tests.beyond.conftest import JOB, ROOM, Api

BULK = f"/v1/joblib/rooms/{ROOM}/tasks/{JOB}/bulk"


async def test_bulk_submit_returns_the_tasks_in_order_with_queue_positions(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    await api.submit(user_headers)
    items = [{"payload": {"i": i}} for i in range(5)] + [{"payload": {"i": 5}, "priority": 1}]
    response = await api.client.post(BULK, json={"items": items}, headers=user_headers)
    assert response.status_code == 202, response.text
    tasks = response.json()["items"]
    assert [t["payload"]["i"] for t in tasks] == list(range(6))
    assert [t["queue_position"] for t in tasks] == [3, 4, 5, 6, 7, 1]
    assert all(t["status"] == "pending" and t["job_name"] == JOB for t in tasks)


async def test_bulk_with_bad_items_is_422_naming_each_index_and_inserts_nothing(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    items = [{}, {"priority": "high"}, {}, {"max_attempts": 0}, {"payload": 3}]
    response = await api.client.post(BULK, json={"items": items}, headers=user_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    for index in (1, 3, 4):
        assert f"items[{index}]" in detail
    for index in (0, 2):
        assert f"items[{index}]" not in detail
    listed = await api.client.get(f"/v1/joblib/rooms/{ROOM}/tasks", headers=user_headers)
    assert listed.json()["total"] == 0


async def test_bulk_of_more_than_1000_items_is_413(api: Api, user_headers: dict[str, str]) -> None:
    """1,000 is the default of JOBSERVER_MAX_BULK_ITEMS (a size limit, so 413)."""
    await api.register(user_headers)
    response = await api.client.post(BULK, json={"items": [{}] * 1001}, headers=user_headers)
    assert response.status_code == 413


async def test_bulk_items_with_a_known_idempotency_key_return_the_existing_task(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    first = (await api.submit(user_headers, idempotency_key="a")).json()
    items = [{"idempotency_key": "b"}, {"idempotency_key": "a"}]
    response = await api.client.post(BULK, json={"items": items}, headers=user_headers)
    assert response.status_code == 202
    tasks = response.json()["items"]
    assert tasks[1]["id"] == first["id"]
    assert tasks[0]["id"] != first["id"]
    repeated = [{"idempotency_key": "c"}, {"idempotency_key": "c"}]
    again = await api.client.post(BULK, json={"items": repeated}, headers=user_headers)
    assert again.status_code == 422
    assert "items[1]" in again.json()["detail"]


async def test_bulk_to_an_unknown_job_is_404(api: Api, user_headers: dict[str, str]) -> None:
    response = await api.client.post(
        f"/v1/joblib/rooms/{ROOM}/tasks/{ROOM}:modifiers:Nope/bulk",
        json={"items": [{}]},
        headers=user_headers,
    )
    assert response.status_code == 404
    assert response.json()["type"] == "/v1/problems/job-not-found"
