"""REST.md Providers: register, list, info, delete, upload checks (reads: test_provider_reads)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.state import Core
from tests.recorder import Recorder

BASE = "/v1/joblib"
H = dict[str, str]


@pytest.fixture
def published(core: Core) -> Recorder:
    return Recorder.install(core)


async def register(
    client: httpx.AsyncClient,
    headers: H,
    room: str = "r1",
    name: str = "local",
    category: str = "filesystem",
    **body: Any,
) -> httpx.Response:
    return await client.put(
        f"{BASE}/rooms/{room}/providers",
        json={"category": category, "name": name, **body},
        headers=headers,
    )


def assert_problem(response: httpx.Response, status: int, type_: str, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/v1/problems/{type_}"
    assert detail in body["detail"]


# --- register ---------------------------------------------------------------------------


async def test_register_new_provider_is_201_with_the_response_shape(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    response = await register(client, user_headers, schema_={"type": "object"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "room_id",
        "category",
        "name",
        "full_name",
        "schema",
        "worker_id",
        "created_at",
    }
    assert body["full_name"] == "r1:filesystem:local"
    assert (body["room_id"], body["category"], body["name"]) == ("r1", "filesystem", "local")
    assert body["schema"] == {"type": "object"}
    assert uuid.UUID(body["id"]).version == 4
    assert uuid.UUID(body["worker_id"])
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_register_accepts_schema_and_schema_underscore(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    a = await register(client, user_headers, name="a", schema={"title": "A"})
    b = await register(client, user_headers, name="b", schema_={"title": "B"})
    assert a.json()["schema"] == {"title": "A"}
    assert b.json()["schema"] == {"title": "B"}


async def test_reregister_is_200_keeps_id_and_overwrites(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    first = (await register(client, user_headers, schema_={"v": 1})).json()
    again = await register(client, user_headers, schema_={"v": 2}, content_type="image/png")
    assert again.status_code == 200
    body = again.json()
    assert body["id"] == first["id"]
    assert body["schema"] == {"v": 2}
    # No worker_id given: a new worker is auto-created even for an update.
    assert body["worker_id"] != first["worker_id"]


async def test_concurrent_first_registrations_end_as_one_provider(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    responses = await asyncio.gather(*(register(client, user_headers) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_register_with_own_worker_uses_it(client: httpx.AsyncClient, user_headers: H) -> None:
    worker = (await client.post(f"{BASE}/workers", headers=user_headers)).json()["id"]
    response = await register(client, user_headers, worker_id=worker)
    assert response.status_code == 201
    assert response.json()["worker_id"] == worker


async def test_register_with_someone_elses_worker_is_404(
    client: httpx.AsyncClient, user_headers: H, other_headers: H
) -> None:
    worker = (await client.post(f"{BASE}/workers", headers=other_headers)).json()["id"]
    response = await register(client, user_headers, worker_id=worker)
    assert_problem(
        response, 404, "worker-not-found", f"Worker '{worker}' not found or not owned by user"
    )


async def test_register_in_global_needs_admin(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    denied = await register(client, user_headers, room="@global")
    assert_problem(denied, 403, "forbidden", "Admin required for @global provider registration")
    allowed = await register(client, admin_headers, room="@global")
    assert allowed.status_code == 201
    assert allowed.json()["full_name"] == "@global:filesystem:local"


async def test_register_in_internal_needs_admin(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    """Beyond the contract (its quirk opened @internal to anyone): admins only (issue 18)."""
    denied = await register(client, user_headers, room="@internal")
    assert_problem(denied, 403, "forbidden", "Admin required for @internal provider registration")
    allowed = await register(client, admin_headers, room="@internal")
    assert allowed.status_code == 201


async def test_register_bad_room_id_is_400(client: httpx.AsyncClient, user_headers: H) -> None:
    response = await register(client, user_headers, room="a:b")
    assert_problem(
        response, 400, "invalid-room-id", "Room ID 'a:b' contains invalid characters (@ or :)"
    )


async def test_register_any_category_when_no_allow_list(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    response = await register(client, user_headers, category="anything-goes")
    assert response.status_code == 201


async def test_register_by_viewer_is_403(client: httpx.AsyncClient, viewer_headers: H) -> None:
    response = await register(client, viewer_headers)
    assert response.status_code == 403


async def test_register_over_another_users_provider_is_403(
    client: httpx.AsyncClient, user_headers: H, other_headers: H
) -> None:
    await register(client, user_headers)
    response = await register(client, other_headers)
    assert_problem(response, 403, "forbidden", "Provider already registered by another user")


async def test_admin_may_take_over_another_users_provider(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    first = (await register(client, user_headers)).json()
    taken = await register(client, admin_headers)
    assert taken.status_code == 200
    assert taken.json()["id"] == first["id"]
    # The admin is the owner now: the former owner may no longer upload.
    upload = await client.post(
        f"{BASE}/providers/{first['id']}/results",
        content=b"{}",
        headers={**user_headers, "X-Request-Hash": "h"},
    )
    assert upload.status_code == 403


async def test_register_and_delete_emit_providers_invalidate_to_the_room(
    client: httpx.AsyncClient, user_headers: H, published: Recorder
) -> None:
    provider = (await register(client, user_headers)).json()
    await register(client, user_headers)
    await client.delete(f"{BASE}/providers/{provider['id']}", headers=user_headers)
    assert published.sent("providers_invalidate") == [("room:r1", {})] * 3


async def test_register_without_token_is_401(client: httpx.AsyncClient) -> None:
    response = await register(client, {})
    assert response.status_code == 401


# --- list ---------------------------------------------------------------------------------


async def _three_rooms(client: httpx.AsyncClient, user_headers: H, admin_headers: H) -> None:
    await register(client, admin_headers, room="@global", name="g")
    await register(client, user_headers, room="r1", name="one")
    await register(client, user_headers, room="r2", name="two")
    await register(client, admin_headers, room="@internal", name="internal")


async def test_list_from_a_room_shows_global_and_that_room_newest_first(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    await _three_rooms(client, user_headers, admin_headers)
    body = (await client.get(f"{BASE}/rooms/r1/providers", headers=user_headers)).json()
    assert [p["full_name"] for p in body["items"]] == [
        "r1:filesystem:one",
        "@global:filesystem:g",
    ]
    assert (body["total"], body["limit"], body["offset"]) == (2, 50, 0)


async def test_list_from_global_shows_only_global(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    await _three_rooms(client, user_headers, admin_headers)
    body = (await client.get(f"{BASE}/rooms/@global/providers", headers=user_headers)).json()
    assert [p["full_name"] for p in body["items"]] == ["@global:filesystem:g"]


async def test_list_is_paginated_and_limit_zero_counts(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    for i in range(3):
        await register(client, user_headers, name=f"p{i}")
    counted = (await client.get(f"{BASE}/rooms/r1/providers?limit=0", headers=user_headers)).json()
    assert (counted["items"], counted["total"]) == ([], 3)
    page = (
        await client.get(f"{BASE}/rooms/r1/providers?limit=2&offset=2", headers=user_headers)
    ).json()
    assert [p["name"] for p in page["items"]] == ["p0"]


async def test_list_bad_room_id_is_400(client: httpx.AsyncClient, user_headers: H) -> None:
    response = await client.get(f"{BASE}/rooms/a@b/providers", headers=user_headers)
    assert response.status_code == 400


# --- info ---------------------------------------------------------------------------------


async def test_info_returns_the_schema_exactly_as_registered(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    schema = {"properties": {"path": {"type": "string"}}, "required": ["path"], "z": [1, "é"]}
    await register(client, user_headers, schema_=schema)
    response = await client.get(
        f"{BASE}/rooms/r1/providers/r1:filesystem:local/info", headers=user_headers
    )
    assert response.status_code == 200
    assert response.json()["schema"] == schema


async def test_info_accepts_percent_encoded_and_slashed_names(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    await register(client, user_headers, name="s3/bucket")
    response = await client.get(
        f"{BASE}/rooms/r1/providers/r1%3Afilesystem%3As3/bucket/info", headers=user_headers
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "r1:filesystem:s3/bucket"


async def test_info_malformed_name_is_404(client: httpx.AsyncClient, user_headers: H) -> None:
    response = await client.get(f"{BASE}/rooms/r1/providers/r1:local/info", headers=user_headers)
    assert_problem(response, 404, "provider-not-found", "Invalid provider name format: r1:local")


async def test_info_from_another_room_is_not_accessible(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    await register(client, user_headers, room="r2")
    response = await client.get(
        f"{BASE}/rooms/r1/providers/r2:filesystem:local/info", headers=user_headers
    )
    assert_problem(
        response,
        404,
        "provider-not-found",
        "Provider 'r2:filesystem:local' not accessible from room 'r1'",
    )


async def test_info_global_provider_is_visible_from_any_room(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    await register(client, admin_headers, room="@global")
    response = await client.get(
        f"{BASE}/rooms/r9/providers/@global:filesystem:local/info", headers=user_headers
    )
    assert response.status_code == 200


async def test_info_from_global_sees_every_room(client: httpx.AsyncClient, user_headers: H) -> None:
    """[quirk] resolution from @global skips the visibility check."""
    await register(client, user_headers, room="r2")
    response = await client.get(
        f"{BASE}/rooms/@global/providers/r2:filesystem:local/info", headers=user_headers
    )
    assert response.status_code == 200


async def test_info_absent_provider_is_404(client: httpx.AsyncClient, user_headers: H) -> None:
    response = await client.get(
        f"{BASE}/rooms/r1/providers/r1:filesystem:nope/info", headers=user_headers
    )
    assert_problem(response, 404, "provider-not-found", "Provider 'r1:filesystem:nope' not found")


# --- delete -------------------------------------------------------------------------------


async def test_delete_by_owner_is_204_and_removes_it(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.delete(f"{BASE}/providers/{provider['id']}", headers=user_headers)
    assert response.status_code == 204
    assert response.content == b""
    info = await client.get(
        f"{BASE}/rooms/r1/providers/r1:filesystem:local/info", headers=user_headers
    )
    assert info.status_code == 404


async def test_delete_by_another_user_is_403(
    client: httpx.AsyncClient, user_headers: H, other_headers: H
) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.delete(f"{BASE}/providers/{provider['id']}", headers=other_headers)
    assert_problem(response, 403, "forbidden", "Provider belongs to different user")


async def test_delete_by_admin_is_allowed(
    client: httpx.AsyncClient, user_headers: H, admin_headers: H
) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.delete(f"{BASE}/providers/{provider['id']}", headers=admin_headers)
    assert response.status_code == 204


async def test_delete_unknown_provider_is_404(client: httpx.AsyncClient, user_headers: H) -> None:
    missing = uuid.uuid4()
    response = await client.delete(f"{BASE}/providers/{missing}", headers=user_headers)
    assert_problem(response, 404, "provider-not-found", f"Provider '{missing}' not found")


async def test_delete_invalid_uuid_is_422(client: httpx.AsyncClient, user_headers: H) -> None:
    response = await client.delete(f"{BASE}/providers/not-a-uuid", headers=user_headers)
    assert response.status_code == 422


async def test_provider_is_deleted_together_with_its_worker(
    client: httpx.AsyncClient, user_headers: H, published: Recorder
) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.delete(f"{BASE}/workers/{provider['worker_id']}", headers=user_headers)
    assert response.status_code == 204
    listed = (await client.get(f"{BASE}/rooms/r1/providers", headers=user_headers)).json()
    assert listed["total"] == 0
    assert ("room:r1", {}) in published.sent("providers_invalidate")


# --- upload checks (the happy path is in test_provider_reads) ---------------------------------


async def test_upload_without_request_hash_is_422(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.post(
        f"{BASE}/providers/{provider['id']}/results", content=b"{}", headers=user_headers
    )
    assert_problem(response, 422, "unprocessable-content", "x-request-hash")


async def test_upload_for_unknown_provider_is_404(
    client: httpx.AsyncClient, user_headers: H
) -> None:
    missing = uuid.uuid4()
    response = await client.post(
        f"{BASE}/providers/{missing}/results",
        content=b"{}",
        headers={**user_headers, "X-Request-Hash": "h"},
    )
    assert_problem(response, 404, "provider-not-found", f"Provider '{missing}' not found")


async def test_upload_by_another_user_is_403(
    client: httpx.AsyncClient, user_headers: H, other_headers: H
) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.post(
        f"{BASE}/providers/{provider['id']}/results",
        content=b"{}",
        headers={**other_headers, "X-Request-Hash": "h"},
    )
    assert_problem(response, 403, "forbidden", "Not authorized to upload results for this provider")


async def test_upload_without_token_is_401(client: httpx.AsyncClient, user_headers: H) -> None:
    provider = (await register(client, user_headers)).json()
    response = await client.post(
        f"{BASE}/providers/{provider['id']}/results",
        content=b"{}",
        headers={"X-Request-Hash": "h"},
    )
    assert response.status_code == 401
