"""Structured logs of a real `jobserver serve`: one JSON line per request and per task
transition, the request id echoed, and never a token, password or secret in them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.conftest import ADMIN_PASSWORD, TEST_SECRET
from tests.live import LiveServer, live_server

WORKER_PASSWORD = "worker-password-that-must-stay-private"
METRICS_TOKEN = "metrics-token-that-must-stay-private"


def _lines(server: LiveServer) -> list[dict[str, Any]]:
    # Give the server a moment to flush the last request's line.
    time.sleep(0.3)
    return [json.loads(line) for line in server.log().splitlines() if line.strip()]


def _drive(server: LiveServer) -> dict[str, Any]:
    """Login, token minting, worker traffic over REST and Socket.IO; returns what leaked-if."""
    http = httpx.Client(base_url=server.url)
    admin = server.token()
    admin_h = {"Authorization": f"Bearer {admin}"}
    created = http.post(
        "/v1/auth/register", json={"email": "w@example.com", "password": WORKER_PASSWORD}
    )
    assert created.status_code == 201, created.text
    worker_user = created.json()["id"]
    minted = http.post(f"/v1/admin/users/{worker_user}/token", headers=admin_h)
    assert minted.status_code == 200, minted.text
    worker_token = minted.json()["access_token"]
    worker_h = {"Authorization": f"Bearer {worker_token}", "X-Request-ID": "req-test-1"}
    reg = http.put(
        "/v1/joblib/rooms/r1/jobs", json={"category": "modifiers", "name": "Echo"}, headers=worker_h
    )
    assert reg.status_code in (200, 201), reg.text
    submitted = http.post("/v1/joblib/rooms/r1/tasks/r1:modifiers:Echo", json={}, headers=admin_h)
    task_id = submitted.json()["id"]
    claim = http.post(
        "/v1/joblib/tasks/claim", json={"worker_id": reg.json()["worker_id"]}, headers=worker_h
    )
    assert claim.json()["task"]["id"] == task_id
    for status in ("running", "completed"):
        http.patch(f"/v1/joblib/tasks/{task_id}", json={"status": status}, headers=worker_h)
    # A token in a query string, as some Socket.IO clients send it.
    http.get(f"/v1/joblib/tasks/{task_id}?token={worker_token}", headers=admin_h)
    assert http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).is_success
    sio = socketio.Client()
    sio.connect(server.url, auth={"token": worker_token}, transports=["websocket"], wait_timeout=5)
    sio.disconnect()
    response = http.get("/health", headers={"X-Request-ID": "req-health-2"})
    http.close()
    return {
        "secrets": [
            admin,
            worker_token,
            ADMIN_PASSWORD,
            WORKER_PASSWORD,
            TEST_SECRET,
            METRICS_TOKEN,
        ],
        "task_id": task_id,
        "worker_user": worker_user,
        "echoed": response.headers["X-Request-ID"],
    }


# What is logged does not depend on the database: one backend is enough for a live server.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_logs_are_json_lines_with_ids_and_never_hold_secrets(
    database_url: str, tmp_path: Path
) -> None:
    with live_server(
        database_url,
        tmp_path,
        JOBSERVER_LOG_FORMAT="json",
        JOBSERVER_LOG_LEVEL="debug",
        JOBSERVER_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        found = _drive(server)
        text = server.log()
        lines = _lines(server)
    for secret in found["secrets"]:
        assert secret not in text
    # Paths only: no query string, so no token in one, not even redacted.
    assert "token=" not in text
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert found["echoed"] == "req-health-2"
    requests = [line for line in lines if line["logger"] == "jobserver.http"]
    patch = [r for r in requests if r["method"] == "PATCH"]
    assert len(patch) == 2
    assert all(r["route"] == "/v1/joblib/tasks/{task_id}" for r in patch)
    assert all(r["user_id"] == found["worker_user"] for r in patch)
    assert all(r["request_id"] == "req-test-1" for r in patch)
    assert all(len(r["request_id"]) >= 8 for r in requests)
    transitions = [line for line in lines if line.get("task_id") == found["task_id"]]
    statuses = [t["status"] for t in transitions if t["logger"] == "jobserver.tasks"]
    assert statuses == ["pending", "claimed", "running", "completed"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_console_lines_are_readable_by_default(database_url: str, tmp_path: Path) -> None:
    with live_server(database_url, tmp_path, JOBSERVER_LOG_LEVEL="info") as server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        time.sleep(0.3)
        text = server.log()
    line = next(line for line in text.splitlines() if "jobserver.http" in line)
    assert "GET /health 200" in line
    assert "request_id=" in line
    assert not line.startswith("{")
