"""Every error, ours or FastAPI's, is an RFC 9457 problem+json (issue 2 §6)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.foundation.helpers import client_for

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    # A 422 of request validation lists its errors too (an RFC 9457 extension member).
    assert set(body) - {"errors"} == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert body["type"].startswith("/v1/problems/")
    assert body["title"]
    return body


async def test_missing_token_is_401_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/joblib/workers"), 401)
    assert body["type"] == "/v1/problems/not-authenticated"
    assert body["title"] == "Unauthorized"


async def test_fastapi_users_401_is_a_problem_too(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/auth/users/me"), 401)
    assert body["type"] == "/v1/problems/not-authenticated"


async def test_non_admin_on_admin_route_is_403_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/v1/users/00000000-0000-0000-0000-000000000000", headers=user_headers
    )
    body = assert_problem(response, 403)
    assert (body["type"], body["title"]) == ("/v1/problems/forbidden", "Forbidden")


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/no-such-thing"), 404)
    assert body["title"] == "Not Found"


async def test_wrong_method_is_405_problem_with_allow_header(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_validation_error_is_422_problem_with_flat_detail(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.get("/v1/joblib/workers?limit=-1&offset=x", headers=user_headers)
    body = assert_problem(response, 422)
    assert body["type"] == "/v1/problems/unprocessable-content"
    assert body["title"] == "Unprocessable Content"
    parts = body["detail"].split("; ")
    assert len(parts) == 2
    assert parts[0].startswith("query.limit: ")
    assert parts[1].startswith("query.offset: ")
    assert [error["path"] for error in body["errors"]] == ["query.limit", "query.offset"]
    assert all(error["message"] for error in body["errors"])


async def test_domain_error_keeps_its_contract_type(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/joblib/workers/00000000-0000-0000-0000-000000000000", headers=user_headers
    )
    body = assert_problem(response, 404)
    assert body["type"] == "/v1/problems/worker-not-found"


async def test_unhandled_exception_is_500_problem_without_stack_trace(app: FastAPI) -> None:
    secret_text = "internal detail that must not leak"

    # A route added by this test only: the app itself has nothing that fails on purpose.
    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError(secret_text)

    async with client_for(app, raise_app_exceptions=False) as http:
        response = await http.get("/test-only/boom")
    body = assert_problem(response, 500)
    assert body["type"] == "/v1/problems/internal-server-error"
    assert secret_text not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
