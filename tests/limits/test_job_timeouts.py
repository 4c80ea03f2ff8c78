"""A job's `timeout_seconds` is at most 7 days (issue 18: 1e300 was accepted)."""

from __future__ import annotations

import httpx

from tests.limits.conftest import assert_problem

SEVEN_DAYS = 7 * 24 * 3600


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], seconds: object
) -> httpx.Response:
    return await client.put(
        "/v1/joblib/rooms/r1/jobs",
        json={"category": "modifiers", "name": "Echo", "timeout_seconds": seconds},
        headers=headers,
    )


async def test_a_job_timeout_over_seven_days_is_422(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    for timeout in (1e300, SEVEN_DAYS + 1):
        response = await register(client, user_headers, timeout)
        assert_problem(response, 422, "unprocessable-content")
    response = await register(client, user_headers, SEVEN_DAYS)
    assert response.status_code == 201, response.text
