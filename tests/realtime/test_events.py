"""EVENTS.md server -> client events over a real socket: rooms, names, exact payloads."""

from __future__ import annotations

import asyncio

import httpx
import socketio

from tests.live import LiveServer
from tests.realtime.conftest import (
    JOIN_SETTLE_SECONDS,
    Recorder,
    headers,
    recorder,
    register_job,
    submit,
)

STATUS_EVENT_FIELDS = {
    "id",
    "name",
    "room_id",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "queue_position",
    "worker_id",
    "error",
}


async def test_room_join_acks_the_room_id(live: LiveServer, user_token: str) -> None:
    rec = await recorder(live.url, user_token)
    try:
        assert await rec.sio.call("room_join", {"room_id": "r1"}) == {"room_id": "r1"}
        assert await rec.sio.call("room_join", {"room_id": "@global"}) == {"room_id": "@global"}
        assert await rec.sio.call("room_leave", {"room_id": "r1"}) == {"room_id": "r1"}
    finally:
        await rec.sio.disconnect()


async def test_room_join_with_invalid_room_id_acks_an_error(
    live: LiveServer, user_token: str
) -> None:
    rec = await recorder(live.url, user_token)
    try:
        bad = await rec.sio.call("room_join", {"room_id": "a:b"})
        assert bad["error"]["type"] == "/v1/problems/invalid-room-id"
        missing = await rec.sio.call("room_join", {"client_type": "pyclient"})
        assert missing["error"]["status"] == 400
    finally:
        await rec.sio.disconnect()


async def test_room_receives_task_status_event_for_every_transition(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    rec = await recorder(live.url, user_token, room_id)
    try:
        worker_id = register_job(live.url, user_token, room_id)
        job = f"{room_id}:modifiers:Echo"
        task_id = submit(live.url, user_token, room_id, job, {"x": 1})
        async with httpx.AsyncClient(base_url=live.url, headers=headers(user_token)) as http:
            claim = await http.post("/v1/joblib/tasks/claim", json={"worker_id": worker_id})
            assert claim.json()["task"]["id"] == task_id
            for status in ("running", "completed"):
                done = await http.patch(f"/v1/joblib/tasks/{task_id}", json={"status": status})
                assert done.status_code == 200, done.text
        statuses = ["pending", "claimed", "running", "completed"]
        events = await rec.wait("task_status_event", len(statuses))
        assert [e["status"] for e in events] == statuses  # type: ignore[index]
        for event in events:
            assert isinstance(event, dict)
            assert set(event) == STATUS_EVENT_FIELDS
            assert (event["id"], event["name"], event["room_id"]) == (task_id, job, room_id)
        assert events[0]["queue_position"] == 1  # type: ignore[index]
        assert events[1]["worker_id"] == worker_id  # type: ignore[index]
        assert events[3]["completed_at"].endswith("Z")  # type: ignore[index]
    finally:
        await rec.sio.disconnect()


async def test_jobs_invalidate_is_an_empty_object_to_the_path_room(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    rec = await recorder(live.url, user_token, room_id)
    try:
        register_job(live.url, user_token, room_id)
        assert await rec.wait("jobs_invalidate") == [{}]
    finally:
        await rec.sio.disconnect()


async def worker_socket(url: str, token: str, job: str, worker_id: str) -> Recorder:
    rec = await recorder(url, token)
    await rec.sio.emit("join_job_room", {"job_name": job, "worker_id": worker_id})
    await asyncio.sleep(JOIN_SETTLE_SECONDS)
    return rec


async def test_task_available_reaches_the_job_room_of_the_owner(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    rec = await worker_socket(live.url, user_token, job, worker_id)
    try:
        task_id = submit(live.url, user_token, room_id, job, {})
        assert await rec.wait("task_available") == [
            {"job_name": job, "room_id": room_id, "task_id": task_id}
        ]
    finally:
        await rec.sio.disconnect()


async def test_join_job_room_with_a_foreign_worker_is_ignored(
    live: LiveServer, user_token: str, other_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    intruder = await worker_socket(live.url, other_token, job, worker_id)
    owner = await worker_socket(live.url, user_token, job, worker_id)
    try:
        submit(live.url, user_token, room_id, job, {})
        await owner.wait("task_available")
        assert intruder.named("task_available") == []
    finally:
        await intruder.sio.disconnect()
        await owner.sio.disconnect()


async def test_join_events_are_idempotent(live: LiveServer, user_token: str, room_id: str) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    rec = await worker_socket(live.url, user_token, job, worker_id)
    try:
        await rec.sio.emit("join_job_room", {"job_name": job, "worker_id": worker_id})
        await rec.sio.emit("join_job_room", {"job_name": job})  # invalid: ignored
        await asyncio.sleep(JOIN_SETTLE_SECONDS)
        submit(live.url, user_token, room_id, job, {})
        await rec.wait("task_available")
        await asyncio.sleep(0.2)
        assert len(rec.named("task_available")) == 1
    finally:
        await rec.sio.disconnect()


async def test_leave_job_room_stops_task_available(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    rec = await worker_socket(live.url, user_token, job, worker_id)
    try:
        await rec.sio.emit("leave_job_room", {"job_name": job, "worker_id": worker_id})
        await asyncio.sleep(JOIN_SETTLE_SECONDS)
        watcher: socketio.AsyncClient = (await recorder(live.url, user_token, room_id)).sio
        submit(live.url, user_token, room_id, job, {})
        await asyncio.sleep(0.5)
        assert rec.named("task_available") == []
        await watcher.disconnect()
    finally:
        await rec.sio.disconnect()
