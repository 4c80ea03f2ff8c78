"""POST /workers with the client's own id (beyond the contract): one id for a worker's
whole life, re-created after a sweep, never a second worker."""

from __future__ import annotations

import uuid

import httpx

from tests.beyond.fenced import claim_batch, create_worker, link, submit

JOBLIB = "/v1/joblib"


async def _worker_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    listed = await client.get(f"{JOBLIB}/workers?limit=500", headers=headers)
    assert listed.status_code == 200, listed.text
    return [w["id"] for w in listed.json()["items"]]


async def test_worker_created_with_the_given_id_is_201(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker_id = str(uuid.uuid4())
    response = await create_worker(client, user_headers, worker_id)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == worker_id
    assert await _worker_ids(client, user_headers) == [worker_id]


async def test_without_an_id_the_server_picks_one_as_in_the_contract(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    bare = await client.post(f"{JOBLIB}/workers", headers=user_headers)
    empty = await create_worker(client, user_headers, None)
    assert (bare.status_code, empty.status_code) == (201, 201)
    assert bare.json()["id"] != empty.json()["id"]


async def test_creating_ones_own_worker_again_is_a_200_heartbeat_not_a_second_worker(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker_id = str(uuid.uuid4())
    first = await create_worker(client, user_headers, worker_id)
    again = await create_worker(client, user_headers, worker_id)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == worker_id
    assert again.json()["last_heartbeat"] >= first.json()["last_heartbeat"]
    assert await _worker_ids(client, user_headers) == [worker_id]


async def test_another_users_worker_id_is_403_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    worker_id = str(uuid.uuid4())
    await create_worker(client, user_headers, worker_id)
    response = await create_worker(client, other_headers, worker_id)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/v1/problems/forbidden"


async def test_viewer_may_not_create_a_worker_with_an_id(
    client: httpx.AsyncClient, viewer_headers: dict[str, str]
) -> None:
    response = await create_worker(client, viewer_headers, str(uuid.uuid4()))
    assert response.status_code == 403, response.text


async def test_malformed_id_is_422_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await create_worker(client, user_headers, "not-a-uuid")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_deleted_worker_comes_back_with_the_same_id_and_claims_again(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    worker_id = str(uuid.uuid4())
    await create_worker(client, user_headers, worker_id)
    await link(client, user_headers, worker_id)
    deleted = await client.delete(f"{JOBLIB}/workers/{worker_id}", headers=user_headers)
    assert deleted.status_code == 204
    gone = await claim_batch(client, user_headers, worker_id, 1)
    assert gone.status_code == 404, gone.text
    recreated = await create_worker(client, user_headers, worker_id)
    assert recreated.status_code == 201, recreated.text
    await link(client, user_headers, worker_id)
    task_id = await submit(client, user_headers)
    claimed = await claim_batch(client, user_headers, worker_id, 1)
    assert claimed.status_code == 200, claimed.text
    assert [t["id"] for t in claimed.json()["tasks"]] == [task_id]
    assert await _worker_ids(client, user_headers) == [worker_id]
