"""Provider permissions beyond the contract: @internal for admins, viewers read cached
results only, results never served as active content in our origin."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest

from app.services import users
from app.state import Core
from tests.conftest import bearer, headers_for, login
from tests.recorder import Recorder

BASE = "/v1/joblib"
Headers = dict[str, str]
VIEWER = "viewer@example.com"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"provider_long_poll_default_seconds": 1, "provider_long_poll_max_seconds": 2}


async def register(
    client: httpx.AsyncClient,
    headers: Headers,
    room: str = "r1",
    name: str = "local",
    content_type: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"category": "filesystem", "name": name, "schema": {}}
    if content_type is not None:
        body["content_type"] = content_type
    return await client.put(f"{BASE}/rooms/{room}/providers", json=body, headers=headers)


def hash_of(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


async def upload(
    client: httpx.AsyncClient, headers: Headers, provider_id: str, params: str, data: bytes
) -> httpx.Response:
    return await client.post(
        f"{BASE}/providers/{provider_id}/results",
        content=data,
        headers={**headers, "X-Request-Hash": hash_of(params)},
    )


async def demote(core: Core, email: str) -> None:
    async with core.sessionmaker() as session:
        await users.set_role(session, email, "viewer")
        await session.commit()


async def test_operator_cannot_register_a_provider_in_internal(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await register(client, user_headers, room="@internal")
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "/v1/problems/forbidden"


async def test_viewer_cannot_trigger_provider_work(
    client: httpx.AsyncClient, core: Core, user_headers: Headers, viewer_headers: Headers
) -> None:
    """A viewer's read that misses the cache would dispatch provider_request: 403, and
    nothing is dispatched; a cached result it may read."""
    published = Recorder.install(core)
    provider = (await register(client, user_headers)).json()
    path = f"{BASE}/rooms/r1/providers/{provider['full_name']}"
    denied = await client.get(f"{path}?path=/x", headers=viewer_headers)
    assert denied.status_code == 403, denied.text
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert published.named("provider_request") == []
    stored = await upload(client, user_headers, provider["id"], '{"path":"/y"}', b'"y"')
    assert stored.status_code == 204
    cached = await client.get(f"{path}?path=/y", headers=viewer_headers)
    assert cached.status_code == 200
    assert cached.content == b'"y"'


async def test_viewer_cannot_upload_or_delete_provider_results(
    client: httpx.AsyncClient, core: Core
) -> None:
    """Even for a provider it registered before it became a viewer."""
    owner = await headers_for(client, core, VIEWER, "operator")
    provider = (await register(client, owner)).json()
    await demote(core, VIEWER)
    # The role change ended the operator's tokens; the viewer signs in again.
    owner = bearer(await login(client, VIEWER, "password"))
    uploaded = await upload(client, owner, provider["id"], "{}", b"{}")
    assert uploaded.status_code == 403, uploaded.text
    deleted = await client.delete(f"{BASE}/providers/{provider['id']}", headers=owner)
    assert deleted.status_code == 403, deleted.text


@pytest.mark.parametrize(
    "declared",
    [
        "text/html",
        "text/html; charset=utf-8",
        "image/svg+xml",
        "application/xhtml+xml",
        "application/javascript",
        "text/xml",
    ],
)
async def test_active_content_results_are_never_served_inline(
    client: httpx.AsyncClient, user_headers: Headers, declared: str
) -> None:
    provider = (await register(client, user_headers, content_type=declared)).json()
    page = b"<html><script>alert(document.cookie)</script></html>"
    assert (await upload(client, user_headers, provider["id"], "{}", page)).status_code == 204
    path = f"{BASE}/rooms/r1/providers/{provider['full_name']}"
    response = await client.get(path, headers=user_headers)
    assert response.status_code == 200
    assert response.content == page
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["content-security-policy"] == "sandbox"


async def test_results_are_served_with_nosniff(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    published = Recorder.install(core)
    provider = (await register(client, user_headers, content_type="image/png")).json()
    path = f"{BASE}/rooms/r1/providers/{provider['full_name']}"
    reading = asyncio.create_task(client.get(path, headers={**user_headers, "Prefer": "wait=2"}))
    await published.wait_for("provider_request")
    await upload(client, user_headers, provider["id"], "{}", b"\x89PNG")
    response = await reading
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in response.headers


async def test_a_malformed_content_type_is_served_as_octet_stream(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    provider = (await register(client, user_headers, content_type="html")).json()
    assert (await upload(client, user_headers, provider["id"], "{}", b"<b>")).status_code == 204
    path = f"{BASE}/rooms/r1/providers/{provider['full_name']}"
    response = await client.get(path, headers=user_headers)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
