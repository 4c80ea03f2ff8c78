"""REST.md Providers: the category allow-list applies only when configured."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ALLOWED = ["filesystem", "frames"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"allowed_provider_categories": ALLOWED}


async def test_register_category_outside_configured_list_is_400(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.put(
        "/v1/joblib/rooms/r1/providers",
        json={"category": "modifiers", "name": "x"},
        headers=user_headers,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "/v1/problems/invalid-category"
    assert body["detail"] == (
        "Provider category 'modifiers' not in allowed list: ['filesystem', 'frames']"
    )


async def test_register_category_in_configured_list_is_201(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.put(
        "/v1/joblib/rooms/r1/providers",
        json={"category": "frames", "name": "x"},
        headers=user_headers,
    )
    assert response.status_code == 201
