"""REST.md provider reads and result uploads, on the in-memory and the Redis result cache."""

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
H = dict[str, str]
FULL = "r1:filesystem:local"
READ = f"{BASE}/rooms/r1/providers/{FULL}"
DEFAULT_WAIT = 1
MAX_WAIT = 2


@pytest.fixture(params=["memory", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "provider_long_poll_default_seconds": DEFAULT_WAIT,
        "provider_long_poll_max_seconds": MAX_WAIT,
    }
    if request.param == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    return overrides


@pytest.fixture
def published(core: Core) -> Recorder:
    return Recorder.install(core)


@pytest.fixture
async def provider(client: httpx.AsyncClient, user_headers: H) -> dict[str, Any]:
    response = await client.put(
        f"{BASE}/rooms/r1/providers",
        json={"category": "filesystem", "name": "local", "schema_": {}},
        headers=user_headers,
    )
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def hash_of(params: dict[str, str]) -> str:
    return hashlib.sha256(
        json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def wait(seconds: int) -> H:
    return {"Prefer": f"wait={seconds}"}


async def upload(
    client: httpx.AsyncClient, headers: H, provider: dict[str, Any], rhash: str, data: bytes
) -> httpx.Response:
    return await client.post(
        f"{BASE}/providers/{provider['id']}/results",
        content=data,
        headers={**headers, "X-Request-Hash": rhash},
    )


async def dispatched(published: Recorder) -> None:
    await published.wait_for("provider_request")


async def test_cache_hit_answers_stored_bytes_with_content_type_and_no_preference_applied(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    stored = await upload(client, user_headers, provider, hash_of({"path": "/data"}), b'["a"]')
    assert stored.status_code == 204
    assert stored.content == b""
    response = await client.get(f"{READ}?path=/data", headers={**user_headers, **wait(5)})
    assert response.status_code == 200
    assert response.content == b'["a"]'
    assert response.headers["content-type"] == "application/json"
    assert "preference-applied" not in response.headers
    assert published.named("provider_request") == []


async def test_miss_dispatches_provider_request_with_canonical_params(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    # Values are strings and a repeated key keeps its last value.
    await client.get(f"{READ}?b=2&a=1&a=3&n=10", headers={**user_headers, **wait(0)})
    canonical = '{"a":"3","b":"2","n":"10"}'
    assert published.sent("provider_request") == [
        (
            f"providers:{FULL}",
            {
                "request_id": hashlib.sha256(canonical.encode()).hexdigest(),
                "provider_name": FULL,
                "params": canonical,
            },
        )
    ]


async def test_non_ascii_params_are_escaped_before_hashing(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    await client.get(READ, params={"name": "é☃"}, headers={**user_headers, **wait(0)})
    (event,) = published.named("provider_request")
    canonical = '{"name":"\\u00e9\\u2603"}'
    assert event.payload()["params"] == canonical
    assert event.payload()["request_id"] == hashlib.sha256(canonical.encode()).hexdigest()


async def test_result_for_the_hash_is_stored_under_the_result_key(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], core: Core
) -> None:
    rhash = hash_of({"path": "/x"})
    await upload(client, user_headers, provider, rhash, b"{}")
    assert await core.results.get(f"provider-result:{FULL}:{rhash}") == b"{}"


async def test_timeout_is_504_problem_with_retry_after(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any]
) -> None:
    response = await client.get(READ, headers={**user_headers, **wait(0)})
    assert response.status_code == 504
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/v1/problems/provider-timeout",
        "title": "Gateway Timeout",
        "status": 504,
        "detail": f"Provider '{FULL}' did not respond within 0s",
    }


async def test_timeout_detail_names_the_provider_as_the_path_did(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any]
) -> None:
    response = await client.get(
        f"{BASE}/rooms/r1/providers/r1%3Afilesystem%3Alocal", headers={**user_headers, **wait(0)}
    )
    assert response.json()["detail"] == f"Provider '{FULL}' did not respond within 0s"


async def test_read_without_prefer_waits_the_default(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any]
) -> None:
    response = await client.get(READ, headers=user_headers)
    assert response.status_code == 504
    assert response.json()["detail"].endswith(f"within {DEFAULT_WAIT}s")


async def test_prefer_wait_is_capped_at_the_maximum(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any]
) -> None:
    response = await client.get(READ, headers={**user_headers, **wait(100)})
    assert response.status_code == 504
    assert response.json()["detail"].endswith(f"within {MAX_WAIT}s")


async def test_upload_while_waiting_answers_200_with_preference_applied(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    reading = asyncio.create_task(client.get(f"{READ}?q=1", headers={**user_headers, **wait(30)}))
    await dispatched(published)
    await upload(client, user_headers, provider, hash_of({"q": "1"}), b'{"ok":true}')
    response = await reading
    assert response.status_code == 200
    assert response.content == b'{"ok":true}'
    assert response.headers["preference-applied"] == f"wait={MAX_WAIT}"


async def test_upload_while_waiting_without_prefer_has_no_preference_applied(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    reading = asyncio.create_task(client.get(READ, headers=user_headers))
    await dispatched(published)
    await upload(client, user_headers, provider, hash_of({}), b"1")
    response = await reading
    assert response.status_code == 200
    assert "preference-applied" not in response.headers


async def test_concurrent_identical_reads_dispatch_once(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    readers = [
        asyncio.create_task(client.get(f"{READ}?p=same", headers={**user_headers, **wait(30)}))
        for _ in range(10)
    ]
    await dispatched(published)
    await upload(client, user_headers, provider, hash_of({"p": "same"}), b'"shared"')
    responses = await asyncio.gather(*readers)
    assert [r.status_code for r in responses] == [200] * 10
    assert {r.content for r in responses} == {b'"shared"'}
    assert len(published.named("provider_request")) == 1


async def test_inflight_lock_outlives_a_timeout_so_retries_do_not_redispatch(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    for _ in range(3):
        response = await client.get(READ, headers={**user_headers, **wait(0)})
        assert response.status_code == 504
    assert len(published.named("provider_request")) == 1


async def test_upload_releases_the_inflight_lock(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], core: Core
) -> None:
    await client.get(READ, headers={**user_headers, **wait(0)})
    await upload(client, user_headers, provider, hash_of({}), b"1")
    assert await core.results.acquire_inflight(f"provider-inflight:{FULL}:{hash_of({})}", 30)


async def test_read_racing_an_upload_never_hangs(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any]
) -> None:
    for i in range(15):
        params = {"i": str(i)}
        read, stored = await asyncio.gather(
            client.get(READ, params=params, headers={**user_headers, **wait(MAX_WAIT)}),
            upload(client, user_headers, provider, hash_of(params), str(i).encode()),
        )
        assert stored.status_code == 204
        assert read.status_code == 200, f"iteration {i}: {read.text}"
        assert read.content == str(i).encode()


async def test_binary_result_round_trips_byte_exact_with_provider_content_type(
    client: httpx.AsyncClient, user_headers: H, published: Recorder
) -> None:
    registered = await client.put(
        f"{BASE}/rooms/r1/providers",
        json={"category": "frames", "name": "png", "content_type": "image/png"},
        headers=user_headers,
    )
    provider = registered.json()
    data = bytes(range(256)) * 64 + b"\x00\xff\r\n"
    path = f"{BASE}/rooms/r1/providers/r1:frames:png?frame=3"
    reading = asyncio.create_task(client.get(path, headers={**user_headers, **wait(MAX_WAIT)}))
    await dispatched(published)
    await upload(client, user_headers, provider, hash_of({"frame": "3"}), data)
    response = await reading
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    again = await client.get(path, headers=user_headers)
    assert again.content == data
    assert again.headers["content-type"] == "image/png"


async def test_upload_emits_provider_result_ready_to_the_provider_room(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any], published: Recorder
) -> None:
    await upload(client, user_headers, provider, "abc123", b"{}")
    assert published.sent("provider_result_ready") == [
        ("room:r1", {"provider_name": FULL, "request_hash": "abc123"})
    ]


async def test_admin_may_upload_for_any_provider(
    client: httpx.AsyncClient, admin_headers: H, provider: dict[str, Any]
) -> None:
    response = await upload(client, admin_headers, provider, hash_of({}), b"1")
    assert response.status_code == 204


async def test_read_resolves_like_info(
    client: httpx.AsyncClient, user_headers: H, provider: dict[str, Any]
) -> None:
    hidden = await client.get(f"{BASE}/rooms/r2/providers/{FULL}", headers=user_headers)
    assert hidden.status_code == 404
    assert "not accessible from room 'r2'" in hidden.json()["detail"]
    malformed = await client.get(f"{BASE}/rooms/r1/providers/local", headers=user_headers)
    assert malformed.status_code == 404
    assert malformed.json()["detail"] == "Invalid provider name format: local"


async def test_read_without_token_is_401(
    client: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    response = await client.get(READ, headers=wait(0))
    assert response.status_code == 401


async def test_read_waits_without_holding_a_database_connection(
    client: httpx.AsyncClient,
    user_headers: H,
    provider: dict[str, Any],
    published: Recorder,
    core: Core,
) -> None:
    reading = asyncio.create_task(client.get(READ, headers={**user_headers, **wait(MAX_WAIT)}))
    await dispatched(published)
    assert core.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await upload(client, user_headers, provider, hash_of({}), b"1")
    assert (await reading).status_code == 200
