"""Bad input that answered 500 (issue 18): strings that are not valid Unicode (a lone
UTF-16 surrogate) are refused with 422 and never stored, and `Prefer: wait` with
thousands of digits is read as a very long wait (capped, as REST.md says)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.beyond.conftest import JOB, ROOM, Api
from tests.limits.conftest import assert_problem

MAX_WAIT = 1

JSON = {"content-type": "application/json"}
LONE_SURROGATE = b'"\\ud800"'  # the JSON escape of an unpaired high surrogate
# The same code point written out as (invalid) UTF-8 bytes.
RAW_SURROGATE = b'"\xed\xa0\x80"'


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"long_poll_max_wait_seconds": MAX_WAIT}


async def send(
    client: httpx.AsyncClient, method: str, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(method, url, content=body, headers={**headers, **JSON})


async def test_a_lone_surrogate_in_a_payload_is_422_and_the_task_list_still_reads(
    api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    url = f"/v1/joblib/rooms/{ROOM}/tasks/{JOB}"
    for string in (LONE_SURROGATE, RAW_SURROGATE):
        for body in (b'{"payload": {"a": ' + string + b"}}", b'{"payload": {' + string + b": 1}}"):
            response = await send(api.client, "POST", url, body, user_headers)
            assert_problem(response, 422, "unprocessable-content")
        bulk = b'{"items": [{"payload": {"a": ' + string + b"}}]}"
        response = await send(api.client, "POST", f"{url}/bulk", bulk, user_headers)
        assert_problem(response, 422, "unprocessable-content")
    listed = await api.client.get(f"/v1/joblib/rooms/{ROOM}/tasks", headers=user_headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 0


async def test_a_lone_surrogate_in_a_report_is_422_and_not_stored(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    assert (await api.submit(user_headers)).status_code == 202
    task = await api.claim(user_headers, worker)
    assert task is not None
    url = f"/v1/joblib/tasks/{task['id']}"
    for body in (
        b'{"status": "running", "error": ' + LONE_SURROGATE + b"}",
        b'{"status": "completed", "result": {"a": ' + LONE_SURROGATE + b"}}",
    ):
        response = await send(api.client, "PATCH", url, body, user_headers)
        assert_problem(response, 422, "unprocessable-content")
    read = await api.get(user_headers, task["id"])
    assert (read["status"], read["error"], read["result"]) == ("claimed", None, None)
    listed = await api.client.get(f"/v1/joblib/rooms/{ROOM}/tasks", headers=user_headers)
    assert listed.status_code == 200, listed.text


async def test_a_lone_surrogate_in_a_job_or_provider_schema_is_422_and_lists_still_read(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    for kind in ("jobs", "providers"):
        url = f"/v1/joblib/rooms/{ROOM}/{kind}"
        body = b'{"category": "modifiers", "name": "S", "schema": {"x": ' + LONE_SURROGATE + b"}}"
        response = await send(client, "PUT", url, body, user_headers)
        assert_problem(response, 422, "unprocessable-content")
        listed = await client.get(url, headers=user_headers)
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 0


async def test_provider_read_parameters_that_are_not_valid_utf8_do_not_break_the_read(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.put(
        f"/v1/joblib/rooms/{ROOM}/providers",
        json={"category": "filesystem", "name": "local"},
        headers=user_headers,
    )
    assert response.status_code == 201, response.text
    read = await client.get(
        f"/v1/joblib/rooms/{ROOM}/providers/{ROOM}:filesystem:local?path=%ED%A0%80",
        headers={**user_headers, "Prefer": "wait=0"},
    )
    # Nobody serves the provider: the read times out; it does not fail.
    assert read.status_code == 504, read.text


async def test_prefer_wait_with_thousands_of_digits_is_capped_not_500(
    api: Api, user_headers: dict[str, str]
) -> None:
    """The finding: `Prefer: wait=` with 5,000 digits answered 500. REST.md: the first
    `wait=<digits>` counts, capped at the server's maximum (1 s here)."""
    await api.register(user_headers)
    submitted = await api.submit(user_headers)
    assert submitted.status_code == 202
    task_id = submitted.json()["id"]
    for prefer in ("wait=" + "9" * 5000, "respond-async, wait=" + "0" * 5000 + "7"):
        response = await api.client.get(
            f"/v1/joblib/tasks/{task_id}", headers={**user_headers, "Prefer": prefer}
        )
        assert response.status_code == 200, response.text
        assert response.headers["preference-applied"] == f"wait={MAX_WAIT}"


async def test_a_lone_surrogate_in_a_registration_or_account_change_is_422(
    api: Api, user_headers: dict[str, str]
) -> None:
    for string in (LONE_SURROGATE, RAW_SURROGATE):
        register = b'{"email": "x@example.com", "password": ' + string + b"}"
        response = await send(api.client, "POST", "/v1/auth/register", register, {})
        assert_problem(response, 422, "unprocessable-content")
        change = b'{"email": ' + string + b', "current_password": "whatever-it-is"}'
        response = await send(api.client, "PATCH", "/v1/users/me", change, user_headers)
        assert_problem(response, 422, "unprocessable-content")
