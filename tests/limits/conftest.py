"""Helpers of the limit tests: the beyond tests' API helper and problem checks."""

from __future__ import annotations

import httpx

from tests.beyond.conftest import api

__all__ = ["api", "assert_problem"]


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, object] = response.json()
    assert body["type"] == f"/v1/problems/{type_}"
    assert body["status"] == status
    return body
