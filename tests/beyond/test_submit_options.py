"""Submit options: priority, due time, attempts, idempotency key; queue_position in claim order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.beyond.conftest import Api


async def test_plain_submit_keeps_contract_behaviour(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    response = await api.submit(user_headers, payload={"x": 1})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["queue_position"] == 1
    assert (body["priority"], body["attempt"], body["max_attempts"]) == (0, 1, 1)


async def test_higher_priority_is_claimed_first(api: Api, user_headers: dict[str, str]) -> None:
    worker = await api.register(user_headers)
    low = (await api.submit(user_headers)).json()
    high = (await api.submit(user_headers, priority=5)).json()
    assert high["queue_position"] == 1
    assert (await api.get(user_headers, low["id"]))["queue_position"] == 2
    first = await api.claim(user_headers, worker)
    assert first is not None
    assert first["id"] == high["id"]


async def test_delayed_task_is_not_claimable_before_it_is_due(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await api.submit(user_headers, delay_seconds=3600)).status_code == 202
    assert (await api.submit(user_headers, run_at=later)).status_code == 202
    assert await api.claim(user_headers, worker) is None
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    due = (await api.submit(user_headers, run_at=past)).json()
    claimed = await api.claim(user_headers, worker)
    assert claimed is not None
    assert claimed["id"] == due["id"]


async def test_queue_position_follows_claim_order_with_due_times(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    delayed = (await api.submit(user_headers, delay_seconds=60)).json()
    now = (await api.submit(user_headers)).json()
    assert now["queue_position"] == 1
    assert (await api.get(user_headers, delayed["id"]))["queue_position"] == 2


async def test_delay_and_run_at_together_are_422(api: Api, user_headers: dict[str, str]) -> None:
    await api.register(user_headers)
    response = await api.submit(user_headers, delay_seconds=5, run_at=datetime.now(UTC).isoformat())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_same_idempotency_key_returns_the_existing_task_with_200(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    first = await api.submit(user_headers, payload={"n": 1}, idempotency_key="k1")
    again = await api.submit(user_headers, payload={"n": 2}, idempotency_key="k1")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["payload"] == {"n": 1}
    listed = await api.client.get("/v1/joblib/rooms/r1/tasks", headers=user_headers)
    assert listed.json()["total"] == 1


async def test_idempotency_key_is_scoped_to_the_room(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    first = await api.submit(user_headers, idempotency_key="k1")
    other_room = await api.submit(user_headers, room="r2", idempotency_key="k1")
    assert other_room.status_code == 202
    assert other_room.json()["id"] != first.json()["id"]
