"""REST.md §2 Tasks, submit: 202 with Location, job resolution, payload rules, events."""

from __future__ import annotations

from datetime import datetime

import httpx

from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    assert_problem,
    register,
    submit,
)

TASK_FIELDS = {
    "id",
    "job_name",
    "room_id",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "worker_id",
    "error",
    "payload",
    "queue_position",
}


async def test_submit_is_202_with_location_and_retry_after(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    response = await submit(client, user_headers, payload={"x": 1})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/v1/joblib/tasks/{body['id']}"
    assert response.headers["retry-after"] == "1"


async def test_submitted_task_has_every_field_with_nulls_and_aware_time(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    body = (await submit(client, user_headers, payload={"x": 1})).json()
    assert set(body) >= TASK_FIELDS  # extra fields are allowed (REST.md §0), none missing
    assert body["job_name"] == "r1:modifiers:Echo"
    assert body["room_id"] == "r1"
    assert body["status"] == "pending"
    assert body["payload"] == {"x": 1}
    assert body["queue_position"] == 1
    for key in ("started_at", "completed_at", "worker_id", "error"):
        assert body[key] is None
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_submit_empty_body_is_an_empty_payload(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    response = await client.post(
        f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:Echo", json={}, headers=user_headers
    )
    assert response.status_code == 202
    assert response.json()["payload"] == {}


async def test_submit_non_object_payload_is_422(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    for payload in ([1, 2], "text", 3):
        response = await client.post(
            f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:Echo",
            json={"payload": payload},
            headers=user_headers,
        )
        assert response.status_code == 422
        assert response.json()["type"] == "/v1/problems/unprocessable-content"


async def test_submit_ignores_unknown_body_keys(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    response = await client.post(
        f"{JOBLIB}/rooms/r1/tasks/r1:modifiers:Echo",
        json={"payload": {}, "run_kwargs": {"a": 1}},
        headers=user_headers,
    )
    assert response.status_code == 202


async def test_submit_invalid_room_is_400(client: httpx.AsyncClient, user_headers: Headers) -> None:
    await register(client, user_headers)
    response = await submit(client, user_headers, room="x:y")
    assert_problem(
        response, 400, "invalid-room-id", "Room ID 'x:y' contains invalid characters (@ or :)"
    )


async def test_submit_malformed_job_name_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await submit(client, user_headers, job="modifiers:Echo")
    assert_problem(response, 404, "job-not-found", "Invalid job name format: modifiers:Echo")


async def test_submit_absent_job_is_404(client: httpx.AsyncClient, user_headers: Headers) -> None:
    response = await submit(client, user_headers, job="r1:modifiers:Nope")
    assert_problem(response, 404, "job-not-found", "Job 'r1:modifiers:Nope' not found")


async def test_submit_cross_room_is_allowed_and_keeps_the_submission_room(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    await register(client, user_headers, room="room_A")
    response = await submit(client, other_headers, job="room_A:modifiers:Echo", room="room_B")
    assert response.status_code == 202
    assert response.json()["room_id"] == "room_B"
    assert response.json()["job_name"] == "room_A:modifiers:Echo"


async def test_submit_to_special_rooms_is_allowed(
    client: httpx.AsyncClient, admin_headers: Headers, user_headers: Headers
) -> None:
    await register(client, admin_headers, room="@global")
    for room in ("@global", "@internal"):
        response = await submit(client, user_headers, job="@global:modifiers:Echo", room=room)
        assert response.status_code == 202
        assert response.json()["room_id"] == room


async def test_submit_does_not_validate_payload_against_schema(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers, schema={"type": "object", "required": ["x"]})
    response = await submit(client, user_headers, payload={"unrelated": True})
    assert response.status_code == 202


async def test_submit_internal_job_without_executor_is_503_before_insert(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    await register(client, admin_headers, room="@internal")
    response = await submit(client, admin_headers, job="@internal:modifiers:Echo", room="r1")
    assert_problem(
        response,
        503,
        "internal-job-not-configured",
        "Internal job '@internal:modifiers:Echo' is registered but no executor is available",
    )
    listed = await client.get(f"{JOBLIB}/rooms/r1/tasks", headers=admin_headers)
    assert listed.json()["total"] == 0


async def test_submit_internal_job_with_executor_gets_no_task_available(
    client: httpx.AsyncClient, admin_headers: Headers, core: Core, emitted: Recorder
) -> None:
    await register(client, admin_headers, room="@internal")
    core.internal_jobs = frozenset({"@internal:modifiers:Echo"})
    emitted.clear()
    response = await submit(client, admin_headers, job="@internal:modifiers:Echo", room="r1")
    assert response.status_code == 202
    assert "task_available" not in [name for name, _ in emitted.names()]


async def test_submit_emits_pending_status_with_queue_position_and_task_available(
    client: httpx.AsyncClient, user_headers: Headers, emitted: Recorder
) -> None:
    await register(client, user_headers, room="room_A")
    emitted.clear()
    body = (await submit(client, user_headers, job="room_A:modifiers:Echo", room="room_B")).json()
    assert emitted.emitted == [
        (
            "task_status_event",
            {
                "id": body["id"],
                "name": "room_A:modifiers:Echo",
                "room_id": "room_B",
                "status": "pending",
                "created_at": emitted.emitted[0][1]["created_at"],
                "started_at": None,
                "completed_at": None,
                "queue_position": 1,
                "worker_id": None,
                "error": None,
            },
            "room:room_B",
        ),
        (
            "task_available",
            {"job_name": "room_A:modifiers:Echo", "room_id": "room_B", "task_id": body["id"]},
            "jobs:room_A:modifiers:Echo",
        ),
    ]


async def test_queue_position_ranks_pending_tasks_of_the_job_across_rooms(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    await register(client, admin_headers, room="@global")
    job = "@global:modifiers:Echo"
    ids = [
        (await submit(client, admin_headers, job=job, room=room)).json() for room in ("a", "b", "c")
    ]
    assert [t["queue_position"] for t in ids] == [1, 2, 3]
    cancel = await client.patch(
        f"{JOBLIB}/tasks/{ids[0]['id']}", json={"status": "cancelled"}, headers=admin_headers
    )
    assert cancel.json()["queue_position"] is None
    positions = [
        (await client.get(f"{JOBLIB}/tasks/{t['id']}", headers=admin_headers)).json()[
            "queue_position"
        ]
        for t in ids[1:]
    ]
    assert positions == [1, 2]
    listed = await client.get(f"{JOBLIB}/rooms/c/tasks", headers=admin_headers)
    assert listed.json()["items"][0]["queue_position"] == 2
