"""Who may join which room (services/room_access.py): job and provider rooms only for a
worker that serves the job or provider, @internal only for admins, admins everywhere."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.live import LiveServer
from tests.realtime.conftest import (
    JOIN_SETTLE_SECONDS,
    Recorder,
    headers,
    make_token,
    recorder,
    register_job,
    submit,
)

FORBIDDEN = "/v1/problems/forbidden"


async def admin_token(database_url: str) -> str:
    return await make_token(database_url, role="admin")


def register_provider(url: str, token: str, room: str, name: str = "local") -> dict[str, Any]:
    response = httpx.put(
        f"{url}/v1/joblib/rooms/{room}/providers",
        json={"category": "filesystem", "name": name, "schema": {}},
        headers=headers(token),
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def read_provider(url: str, token: str, room: str, provider: str) -> int:
    async with httpx.AsyncClient(base_url=url, headers=headers(token), timeout=10) as http:
        response = await http.get(
            f"/v1/joblib/rooms/{room}/providers/{provider}",
            params={"path": "/secret"},
            headers={"Prefer": "wait=1"},
        )
        return response.status_code


async def joined(rec: Recorder, event: str, body: dict[str, str]) -> object:
    ack = await rec.sio.call(event, body, timeout=10)
    await asyncio.sleep(JOIN_SETTLE_SECONDS)
    return ack


async def test_provider_room_join_by_a_worker_of_another_user_is_refused(
    live: LiveServer, user_token: str, other_token: str, room_id: str
) -> None:
    """The finding: any user's worker could join another user's provider room and receive
    its provider_request with the read's parameters."""
    provider = register_provider(live.url, user_token, room_id)
    full_name = provider["full_name"]
    intruder_worker = register_job(live.url, other_token, f"{room_id}-other")
    owner = await recorder(live.url, user_token)
    intruder = await recorder(live.url, other_token)
    try:
        ack = await joined(
            intruder,
            "join_provider_room",
            {"provider_name": full_name, "worker_id": intruder_worker},
        )
        assert (
            await joined(
                owner,
                "join_provider_room",
                {"provider_name": full_name, "worker_id": provider["worker_id"]},
            )
            is None
        )
        await read_provider(live.url, other_token, room_id, full_name)
        [request] = await owner.wait("provider_request")
        assert request["params"] == '{"path":"/secret"}'  # type: ignore[index]
        assert intruder.named("provider_request") == []
        assert isinstance(ack, dict)
        assert ack["error"]["type"] == FORBIDDEN
    finally:
        await intruder.sio.disconnect()
        await owner.sio.disconnect()


async def test_job_room_join_by_a_worker_that_does_not_serve_the_job_is_refused(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    """Owning *a* worker is not enough: it must be linked to that job."""
    register_job(live.url, user_token, room_id, "Echo")
    other_worker = register_job(live.url, user_token, f"{room_id}-b", "Other")
    job = f"{room_id}:modifiers:Echo"
    rec = await recorder(live.url, user_token)
    try:
        ack = await joined(rec, "join_job_room", {"job_name": job, "worker_id": other_worker})
        assert isinstance(ack, dict)
        assert ack["error"]["type"] == FORBIDDEN
        submit(live.url, user_token, room_id, job, {})
        await asyncio.sleep(0.5)
        assert rec.named("task_available") == []
    finally:
        await rec.sio.disconnect()


async def test_internal_rooms_are_for_admins_only(
    live: LiveServer, live_database: str, user_token: str
) -> None:
    admin = await recorder(live.url, await admin_token(live_database))
    operator = await recorder(live.url, user_token)
    try:
        refused = await operator.sio.call("room_join", {"room_id": "@internal"}, timeout=10)
        assert refused["error"]["type"] == FORBIDDEN
        assert refused["error"]["status"] == 403
        job_join = await operator.sio.call(
            "join_job_room",
            {"job_name": "@internal:modifiers:Echo", "worker_id": str(uuid.uuid4())},
            timeout=10,
        )
        assert job_join["error"]["type"] == FORBIDDEN
        provider_join = await operator.sio.call(
            "join_provider_room",
            {"provider_name": "@internal:filesystem:x", "worker_id": str(uuid.uuid4())},
            timeout=10,
        )
        assert provider_join["error"]["type"] == FORBIDDEN
        ack = await admin.sio.call("room_join", {"room_id": "@internal"}, timeout=10)
        assert ack == {"room_id": "@internal"}
    finally:
        await admin.sio.disconnect()
        await operator.sio.disconnect()


async def test_admin_may_join_any_job_and_provider_room(
    live: LiveServer, live_database: str, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    provider = register_provider(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    admin = await recorder(live.url, await admin_token(live_database))
    try:
        body = {"job_name": job, "worker_id": worker_id}
        assert await joined(admin, "join_job_room", body) is None
        body = {"provider_name": provider["full_name"], "worker_id": worker_id}
        assert await joined(admin, "join_provider_room", body) is None
        task_id = submit(live.url, user_token, room_id, job, {})
        [available] = await admin.wait("task_available")
        assert available == {"job_name": job, "room_id": room_id, "task_id": task_id}
    finally:
        await admin.sio.disconnect()
