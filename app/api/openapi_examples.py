"""Example bodies for the OpenAPI document, by schema name: api/openapi_document.py puts
each on the requests and answers of that schema. One place, so that the bodies of the
generic pages (`Paginated_TaskResponse_`) are built from their items' examples; a model
whose JSON schema carries its own `examples` uses those instead.
"""

from __future__ import annotations

from typing import Any

Example = dict[str, Any]

TASK_ID = "0b6f2c61-51c4-4c41-9a54-7d1f7e2b9c3a"
OTHER_TASK_ID = "5d2a7b90-3e1f-4f0e-8c1e-2f9a6b7c8d41"
WORKER_ID = "8e3b1f2a-6c4d-4e5f-9a0b-1c2d3e4f5a6b"
JOB_ID = "c7d8e9f0-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
PROVIDER_ID = "3f4e5d6c-7b8a-4d9c-8e1f-2a3b4c5d6e7f"
SCHEDULE_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
USER_ID = "1e2d3c4b-5a69-4788-9a0b-cdef01234567"
ROOM = "room_42"
JOB = "@global:modifiers:Rotate"
SCHEMA = {
    "type": "object",
    "properties": {"angle": {"type": "number"}, "axis": {"type": "string"}},
    "required": ["angle"],
}
PAYLOAD = {"angle": 90, "axis": "z"}
CREATED = "2026-11-30T12:00:00Z"
STARTED = "2026-11-30T12:00:01.250000Z"
DONE = "2026-11-30T12:00:03.500000Z"


def page(item: Example, limit: int = 50) -> Example:
    return {"items": [item], "total": 1, "limit": limit, "offset": 0}


TASK = {
    "id": TASK_ID,
    "job_name": JOB,
    "room_id": ROOM,
    "status": "completed",
    "created_at": CREATED,
    "started_at": STARTED,
    "completed_at": DONE,
    "worker_id": WORKER_ID,
    "error": None,
    "payload": PAYLOAD,
    "queue_position": None,
    "result": {"rotated": True},
    "priority": 0,
    "run_at": None,
    "attempt": 1,
    "max_attempts": 1,
    "concurrency_key": None,
}
PENDING_TASK = {
    **TASK,
    "status": "pending",
    "started_at": None,
    "completed_at": None,
    "worker_id": None,
    "queue_position": 0,
    "result": None,
}
CLAIMED_TASK = {**PENDING_TASK, "status": "claimed", "worker_id": WORKER_ID, "queue_position": None}
JOB_VIEW = {
    "id": JOB_ID,
    "room_id": "@global",
    "category": "modifiers",
    "name": "Rotate",
    "full_name": JOB,
    "schema": SCHEMA,
    "workers": [WORKER_ID],
    "worker_id": WORKER_ID,
    "declared": False,
    "paused": False,
    "timeout_seconds": 600.0,
    "max_attempts": None,
    "priority": None,
    "max_running": None,
    "max_running_per_key": None,
}
JOB_SUMMARY = {
    "full_name": JOB,
    "category": "modifiers",
    "name": "Rotate",
    "workers": [WORKER_ID],
    "declared": False,
    "paused": False,
}
WORKER = {"id": WORKER_ID, "last_heartbeat": CREATED}
WORKER_SUMMARY = {**WORKER, "job_count": 2}
PROVIDER = {
    "id": PROVIDER_ID,
    "room_id": ROOM,
    "category": "filesystem",
    "name": "local",
    "full_name": f"{ROOM}:filesystem:local",
    "schema": {"type": "object", "properties": {"path": {"type": "string"}}},
    "worker_id": WORKER_ID,
    "created_at": CREATED,
}
SCHEDULE_IN = {
    "job_name": JOB,
    "room_id": ROOM,
    "payload": PAYLOAD,
    "cron": "*/15 * * * *",
    "timezone": "Europe/Berlin",
}
SCHEDULE = {
    "id": SCHEDULE_ID,
    "job_name": JOB,
    "room_id": ROOM,
    "payload": PAYLOAD,
    "cron": "*/15 * * * *",
    "timezone": "Europe/Berlin",
    "every_seconds": None,
    "enabled": True,
    "catch_up": False,
    "priority": None,
    "max_attempts": None,
    "next_fire_at": "2026-11-30T12:15:00Z",
    "last_fired_at": CREATED,
    "created_by": USER_ID,
    "created_at": "2026-11-29T08:00:00Z",
    "updated_at": "2026-11-29T08:00:00Z",
}
JOB_STATS = {
    "job_name": JOB,
    "counts": {"pending": 3, "running": 1, "completed": 120, "failed": 2},
    "oldest_pending_age_seconds": 4.2,
    "completed_last_minute": 6,
    "completed_last_hour": 118,
    "failed_last_minute": 0,
    "failed_last_hour": 2,
    "paused": False,
}
REPORT_ITEM = {
    "id": TASK_ID,
    "status": "completed",
    "attempt": 1,
    "worker_id": WORKER_ID,
    "result": {"rotated": True},
}

EXAMPLES: dict[str, Example] = {
    # --- requests ---
    "TaskSubmitRequest": {"payload": PAYLOAD},
    "BulkSubmitIn": {
        "items": [
            {"payload": PAYLOAD},
            {"payload": {"angle": 180}, "priority": 5, "depends_on": [0]},
        ]
    },
    "TaskClaimRequest": {"worker_id": WORKER_ID},
    "TaskClaimBatchRequest": {"worker_id": WORKER_ID, "limit": 10},
    "TaskUpdateRequest": {
        "status": "completed",
        "attempt": 1,
        "worker_id": WORKER_ID,
        "result": {"rotated": True},
    },
    "TaskReportBatchRequest": {
        "items": [
            REPORT_ITEM,
            {
                "id": OTHER_TASK_ID,
                "status": "failed",
                "attempt": 2,
                "worker_id": WORKER_ID,
                "error": "ValueError: angle out of range",
            },
        ]
    },
    "TaskReleaseRequest": {"worker_id": WORKER_ID, "attempt": 1},
    "TaskProgressIn": {
        "worker_id": WORKER_ID,
        "attempt": 1,
        "progress": 0.4,
        "message": "frame 40 of 100",
    },
    "WorkerCreateIn": {"id": WORKER_ID},
    "JobRegisterRequest": {
        "category": "modifiers",
        "name": "Rotate",
        "schema": SCHEMA,
        "worker_id": WORKER_ID,
        "timeout_seconds": 600,
    },
    "JobSettingsIn": {
        "category": "modifiers",
        "name": "Rotate",
        "schema": SCHEMA,
        "max_attempts": 3,
        "timeout_seconds": 600,
        "max_running": 4,
    },
    "ProviderRegisterRequest": {
        "category": "filesystem",
        "name": "local",
        "schema": PROVIDER["schema"],
        "content_type": "application/json",
        "worker_id": WORKER_ID,
    },
    "ScheduleIn": SCHEDULE_IN,
    "SchedulePatch": {"enabled": False},
    # --- answers ---
    "TaskResponse": TASK,
    "Paginated_TaskResponse_": page(TASK),
    "BulkSubmitOut": {"items": [PENDING_TASK, {**PENDING_TASK, "id": OTHER_TASK_ID}]},
    "TaskClaimResponse": {"task": CLAIMED_TASK},
    "TaskClaimBatchResponse": {"tasks": [CLAIMED_TASK]},
    "TaskReportBatchResponse": {
        "items": [
            {"id": TASK_ID, "applied": True, "task_status": "completed", "problem": None},
            {
                "id": OTHER_TASK_ID,
                "applied": False,
                "task_status": None,
                "problem": {
                    "type": "/v1/problems/stale-attempt",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "Attempt 2 is not the task's current attempt (3)",
                },
            },
        ]
    },
    "TaskProgressOut": {
        "id": TASK_ID,
        "progress": 0.4,
        "message": "frame 40 of 100",
        "stored": True,
    },
    "AttemptsOut": {
        "items": [
            {
                "attempt": 1,
                "worker_id": WORKER_ID,
                "claimed_at": CREATED,
                "started_at": STARTED,
                "ended_at": DONE,
                "outcome": "failed",
                "error": "ValueError: angle out of range",
                "traceback": "Traceback (most recent call last):\n  ...\n"
                "ValueError: angle out of range\n",
            },
            {
                "attempt": 2,
                "worker_id": WORKER_ID,
                "claimed_at": DONE,
                "started_at": DONE,
                "ended_at": None,
                "outcome": "running",
                "error": None,
                "traceback": None,
            },
        ]
    },
    "WorkerResponse": WORKER,
    "Paginated_WorkerSummary_": page(WORKER_SUMMARY),
    "JobResponse": JOB_VIEW,
    "Paginated_JobSummary_": page(JOB_SUMMARY),
    "ProviderResponse": PROVIDER,
    "Paginated_ProviderResponse_": page(PROVIDER),
    "ScheduleOut": SCHEDULE,
    "Paginated_ScheduleOut_": page(SCHEDULE),
    "StatsOut": {"generated_at": CREATED, "jobs": [JOB_STATS]},
}
# Raw bodies of the provider routes (no schema to name them by).
PROVIDER_READ = {"entries": ["a.xyz", "b.xyz"]}
PROVIDER_UPLOAD = PROVIDER_READ
