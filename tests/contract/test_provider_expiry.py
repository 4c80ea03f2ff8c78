"""REST.md provider reads: an expired cached result is requested from the provider again."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest

from app.state import Core
from tests.recorder import Recorder

BASE = "/v1/joblib"
RESULT_TTL = 1


@pytest.fixture(params=["memory", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {"provider_result_ttl_seconds": RESULT_TTL}
    if request.param == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    return overrides


async def test_expired_result_is_requested_again(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    published = Recorder.install(core)
    provider = (
        await client.put(
            f"{BASE}/rooms/r1/providers",
            json={"category": "filesystem", "name": "local"},
            headers=user_headers,
        )
    ).json()
    read = f"{BASE}/rooms/r1/providers/r1:filesystem:local?path=/a"
    no_wait = {**user_headers, "Prefer": "wait=0"}
    rhash = hashlib.sha256(json.dumps({"path": "/a"}, separators=(",", ":")).encode()).hexdigest()

    assert (await client.get(read, headers=no_wait)).status_code == 504
    await client.post(
        f"{BASE}/providers/{provider['id']}/results",
        content=b'"v1"',
        headers={**user_headers, "X-Request-Hash": rhash},
    )
    assert (await client.get(read, headers=no_wait)).content == b'"v1"'
    assert len(published.named("provider_request")) == 1

    await asyncio.sleep(RESULT_TTL + 0.3)
    assert (await client.get(read, headers=no_wait)).status_code == 504
    assert len(published.named("provider_request")) == 2
