"""A first end-to-end pass through the contract: register, submit, claim, complete."""

from __future__ import annotations

import httpx


async def test_register_submit_claim_complete_round_trip(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    reg = await client.put(
        "/v1/joblib/rooms/r1/jobs",
        json={"category": "modifiers", "name": "Echo", "schema_": {"type": "object"}},
        headers=user_headers,
    )
    assert reg.status_code == 201
    worker_id = reg.json()["worker_id"]
    sub = await client.post(
        "/v1/joblib/rooms/r1/tasks/r1:modifiers:Echo",
        json={"payload": {"x": 1}},
        headers=user_headers,
    )
    assert sub.status_code == 202
    assert sub.json()["queue_position"] == 1
    claim = await client.post(
        "/v1/joblib/tasks/claim", json={"worker_id": worker_id}, headers=user_headers
    )
    task = claim.json()["task"]
    assert task["id"] == sub.json()["id"]
    for status in ("running", "completed"):
        patched = await client.patch(
            f"/v1/joblib/tasks/{task['id']}", json={"status": status}, headers=user_headers
        )
        assert patched.status_code == 200, patched.text
    assert patched.json()["completed_at"] is not None
