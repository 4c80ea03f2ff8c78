"""REST.md §2 Workers: create, list, heartbeat, delete (the cascade is in test_soft_delete)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import httpx

from tests.contract.conftest import JOBLIB, Headers, Recorder, assert_problem, registered_worker


def aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


async def test_create_worker_is_201_with_id_and_aware_heartbeat(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    response = await client.post(f"{JOBLIB}/workers", headers=user_headers)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "last_heartbeat"}
    assert str(uuid.UUID(body["id"])) == body["id"]
    aware(body["last_heartbeat"])
    assert emitted.emitted == []


async def test_create_worker_ignores_a_body(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.post(f"{JOBLIB}/workers", json={"x": 1}, headers=user_headers)
    assert response.status_code == 201


async def test_list_workers_shows_all_users_workers_with_job_count(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    mine = await registered_worker(client, user_headers)
    theirs = (await client.post(f"{JOBLIB}/workers", headers=other_headers)).json()["id"]
    response = await client.get(f"{JOBLIB}/workers", headers=user_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    assert [w["id"] for w in body["items"]] == [theirs, mine]
    assert {w["id"]: w["job_count"] for w in body["items"]} == {mine: 1, theirs: 0}
    assert set(body["items"][0]) == {"id", "last_heartbeat", "job_count"}


async def test_heartbeat_strictly_increases_last_heartbeat(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    created = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()
    first = await client.patch(f"{JOBLIB}/workers/{created['id']}", headers=user_headers)
    await asyncio.sleep(0.002)
    second = await client.patch(f"{JOBLIB}/workers/{created['id']}", headers=user_headers)
    assert first.status_code == second.status_code == 200
    assert set(second.json()) == {"id", "last_heartbeat"}
    stamps = [aware(r["last_heartbeat"]) for r in (created, first.json(), second.json())]
    assert stamps[0] < stamps[1] < stamps[2]
    assert emitted.emitted == []


async def test_heartbeat_unknown_worker_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = uuid.uuid4()
    response = await client.patch(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert_problem(response, 404, "worker-not-found", f"Worker '{worker_id}' not found")


async def test_heartbeat_of_another_users_worker_is_403(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    worker_id = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    response = await client.patch(f"{JOBLIB}/workers/{worker_id}", headers=other_headers)
    assert_problem(response, 403, "forbidden", "Worker belongs to different user")


async def test_heartbeat_has_no_superuser_bypass(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers
) -> None:
    worker_id = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    response = await client.patch(f"{JOBLIB}/workers/{worker_id}", headers=admin_headers)
    assert_problem(response, 403, "forbidden", "Worker belongs to different user")


async def test_invalid_worker_uuid_in_path_is_422(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.patch(f"{JOBLIB}/workers/not-a-uuid", headers=user_headers)
    assert response.status_code == 422
    assert response.json()["type"] == "/v1/problems/unprocessable-content"


async def test_delete_own_worker_is_204_with_empty_body(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    response = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert response.status_code == 204
    assert response.content == b""
    again = await client.patch(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert again.status_code == 404


async def test_delete_unknown_worker_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = uuid.uuid4()
    response = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert_problem(response, 404, "worker-not-found", f"Worker '{worker_id}' not found")


async def test_delete_another_users_worker_is_403(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    worker_id = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    response = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=other_headers)
    assert_problem(response, 403, "forbidden", "Worker belongs to different user")


async def test_superuser_may_delete_any_worker(
    client: httpx.AsyncClient, user_headers: Headers, admin_headers: Headers
) -> None:
    worker_id = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    response = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=admin_headers)
    assert response.status_code == 204
