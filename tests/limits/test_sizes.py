"""Size limits (issue 18): request bodies, task payloads, error texts, provider results,
bulk submits and JSON nesting, each answered with a problem before anything is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.beyond.conftest import JOB, ROOM, Api
from tests.limits.conftest import assert_problem

KIB = 1024
MIB = 1024 * KIB
BODY_LIMIT = 256 * KIB
PAYLOAD_LIMIT = 64 * KIB
ERROR_LIMIT = 4 * KIB
PROVIDER_LIMIT = 512 * KIB
BULK_LIMIT = 5
SUBMIT = f"/v1/joblib/rooms/{ROOM}/tasks/{JOB}"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "max_body_bytes": BODY_LIMIT,
        "max_payload_bytes": PAYLOAD_LIMIT,
        "max_error_bytes": ERROR_LIMIT,
        "max_provider_result_bytes": PROVIDER_LIMIT,
        "max_bulk_items": BULK_LIMIT,
    }


async def stored_tasks(api: Api, headers: dict[str, str]) -> int:
    response = await api.client.get(f"/v1/joblib/rooms/{ROOM}/tasks", headers=headers)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def running_task(api: Api, headers: dict[str, str]) -> str:
    worker = await api.register(headers)
    assert (await api.submit(headers, payload={})).status_code == 202
    task = await api.claim(headers, worker)
    assert task is not None
    assert (await api.patch(headers, task["id"], status="running")).status_code == 200
    task_id: str = task["id"]
    return task_id


async def test_a_20_mb_payload_is_413_and_not_stored(
    api: Api, user_headers: dict[str, str], settings_overrides: dict[str, Any]
) -> None:
    """The finding: a 20 MB payload was stored (202)."""
    await api.register(user_headers)
    body = orjson.dumps({"payload": {"blob": "x" * (20 * MIB)}})
    response = await api.client.post(
        SUBMIT, content=body, headers={**user_headers, "content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")
    assert await stored_tasks(api, user_headers) == 0


async def test_a_body_over_the_limit_is_413_before_it_is_parsed(
    api: Api, user_headers: dict[str, str]
) -> None:
    # Not even JSON: a parser would answer 422; the size alone decides.
    body = b"{" * (BODY_LIMIT + 1)
    response = await api.client.post(
        SUBMIT, content=body, headers={**user_headers, "content-type": "application/json"}
    )
    problem = assert_problem(response, 413, "payload-too-large")
    assert str(BODY_LIMIT) in str(problem["detail"])


async def test_a_chunked_body_over_the_limit_is_413_and_read_no_further(
    api: Api, user_headers: dict[str, str]
) -> None:
    chunk = b" " * (16 * KIB)
    chunks = 4 * BODY_LIMIT // len(chunk)
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"payload": {"a": "'
        for _ in range(chunks):
            sent += 1
            yield chunk
        yield b'"}}'

    response = await api.client.post(
        SUBMIT, content=stream(), headers={**user_headers, "content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")
    assert sent <= BODY_LIMIT // len(chunk) + 1
    assert await stored_tasks(api, user_headers) == 0


async def test_a_body_within_the_limit_passes(api: Api, user_headers: dict[str, str]) -> None:
    await api.register(user_headers)
    response = await api.submit(user_headers, payload={"a": "x" * (PAYLOAD_LIMIT // 2)})
    assert response.status_code == 202, response.text


async def test_a_payload_over_its_limit_is_413_and_not_stored(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    response = await api.submit(user_headers, payload={"a": "x" * PAYLOAD_LIMIT})
    problem = assert_problem(response, 413, "payload-too-large")
    assert str(problem["detail"]).startswith("Payload is ")
    assert await stored_tasks(api, user_headers) == 0


async def test_a_bulk_item_with_a_payload_over_the_limit_stores_nothing(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    items = [{"payload": {}}, {"payload": {"a": "x" * PAYLOAD_LIMIT}}]
    response = await api.client.post(f"{SUBMIT}/bulk", json={"items": items}, headers=user_headers)
    assert_problem(response, 413, "payload-too-large")
    assert await stored_tasks(api, user_headers) == 0


async def test_a_bulk_submit_over_the_item_limit_is_413(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    items = [{"payload": {}}] * (BULK_LIMIT + 1)
    response = await api.client.post(f"{SUBMIT}/bulk", json={"items": items}, headers=user_headers)
    problem = assert_problem(response, 413, "payload-too-large")
    assert str(BULK_LIMIT) in str(problem["detail"])
    within = await api.client.post(
        f"{SUBMIT}/bulk", json={"items": items[:BULK_LIMIT]}, headers=user_headers
    )
    assert within.status_code == 202, within.text


async def test_an_error_text_over_its_limit_is_413_and_not_stored(
    api: Api, user_headers: dict[str, str]
) -> None:
    task_id = await running_task(api, user_headers)
    # Multi-byte characters: the limit counts UTF-8 bytes, not characters.
    response = await api.patch(user_headers, task_id, status="failed", error="é" * ERROR_LIMIT)
    assert_problem(response, 413, "payload-too-large")
    assert (await api.get(user_headers, task_id))["status"] == "running"
    fine = await api.patch(user_headers, task_id, status="failed", error="é" * (ERROR_LIMIT // 4))
    assert fine.status_code == 200, fine.text


async def test_a_batch_report_with_an_error_over_the_limit_refuses_that_item(
    api: Api, user_headers: dict[str, str]
) -> None:
    task_id = await running_task(api, user_headers)
    task = await api.get(user_headers, task_id)
    item = {"id": task_id, "attempt": task["attempt"], "worker_id": task["worker_id"]}
    response = await api.client.patch(
        "/v1/joblib/tasks",
        json={"items": [{**item, "status": "failed", "error": "x" * (ERROR_LIMIT + 1)}]},
        headers=user_headers,
    )
    assert response.status_code == 200, response.text
    outcome = response.json()["items"][0]
    assert outcome["applied"] is False
    assert outcome["problem"]["status"] == 413


async def register_provider(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.put(
        f"/v1/joblib/rooms/{ROOM}/providers",
        json={"category": "filesystem", "name": "local"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    provider_id: str = response.json()["id"]
    return provider_id


async def test_a_provider_result_over_its_limit_is_413(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    """Provider results have their own limit, here above the general body limit."""
    provider_id = await register_provider(client, user_headers)
    url = f"/v1/joblib/providers/{provider_id}/results"
    headers = {**user_headers, "X-Request-Hash": "abc"}
    fine = await client.post(url, content=b"x" * (BODY_LIMIT + 1), headers=headers)
    assert fine.status_code == 204, fine.text
    response = await client.post(url, content=b"x" * (PROVIDER_LIMIT + 1), headers=headers)
    assert_problem(response, 413, "payload-too-large")


async def test_a_payload_nested_deeper_than_the_limit_is_422(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    deep: Any = 1
    for _ in range(65):
        deep = [deep]
    response = await api.submit(user_headers, payload={"a": deep[0]})
    assert response.status_code == 422, response.text
    problem = assert_problem(response, 422, "unprocessable-content")
    assert "nest" in str(problem["detail"])
    shallow = await api.submit(user_headers, payload={"a": deep[0][0]})
    assert shallow.status_code == 202, shallow.text


async def test_a_deeply_nested_result_is_422_not_500(
    api: Api, user_headers: dict[str, str]
) -> None:
    """The finding: a result nested 300 deep answered 500."""
    task_id = await running_task(api, user_headers)
    body = b'{"status": "completed", "result": ' + b"[" * 300 + b"]" * 300 + b"}"
    response = await api.client.patch(
        f"/v1/joblib/tasks/{task_id}",
        content=body,
        headers={**user_headers, "content-type": "application/json"},
    )
    assert_problem(response, 422, "unprocessable-content")
    assert (await api.get(user_headers, task_id))["status"] == "running"


async def test_a_job_schema_nested_deeper_than_the_limit_is_422(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    deep: Any = {}
    for _ in range(70):
        deep = {"d": deep}
    for kind in ("jobs", "providers"):
        response = await client.put(
            f"/v1/joblib/rooms/{ROOM}/{kind}",
            json={"category": "modifiers", "name": "Deep", "schema": deep},
            headers=user_headers,
        )
        assert_problem(response, 422, "unprocessable-content")
