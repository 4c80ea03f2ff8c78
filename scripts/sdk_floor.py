"""The SDK's ceiling: an in-memory server speaking only what `scripts/bench_sdk.py` and one
SDK `Worker` use (bulk submit, claim-batch, batch reports, worker ids, stats, and a
Socket.IO `task_available` after each submit), with no database and no auth. Run the
bench against it to see what the SDK itself sustains; the gap to the real server's figure
is the server's cost. A benchmark aid, never a test double: tests use the real server.

    uv run python scripts/sdk_floor.py --port 8799 &
    uv run python scripts/bench_sdk.py --url http://127.0.0.1:8799 --token x --tasks 5000
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TASKS: dict[str, dict[str, Any]] = {}
PENDING: deque[str] = deque()
WORKERS: set[str] = set()
JOBS: dict[str, list[str]] = {}
SIO = socketio.AsyncServer(async_mode="asgi")
SIO.on("join_job_room", lambda sid, data: None)


def now() -> str:
    return datetime.now(UTC).isoformat()


async def create_worker(request: Request) -> JSONResponse:
    body = await request.json() if await request.body() else {}
    worker_id = (body or {}).get("id") or str(uuid.uuid4())
    created = worker_id not in WORKERS
    WORKERS.add(worker_id)
    return JSONResponse({"id": worker_id, "last_heartbeat": now()}, 201 if created else 200)


async def worker(request: Request) -> Response:
    worker_id = request.path_params["worker_id"]
    if worker_id not in WORKERS:
        return JSONResponse({"type": "/v1/problems/worker-not-found", "status": 404}, 404)
    if request.method == "DELETE":
        WORKERS.discard(worker_id)
        return Response(status_code=204)
    return JSONResponse({"id": worker_id, "last_heartbeat": now()})


async def register_job(request: Request) -> JSONResponse:
    body = await request.json()
    name = f"{request.path_params['room']}:{body['category']}:{body['name']}"
    JOBS.setdefault(name, []).append(body["worker_id"])
    return JSONResponse({"worker_id": body["worker_id"], "full_name": name})


async def read_job(request: Request) -> JSONResponse:
    return JSONResponse({"workers": JOBS.get(request.path_params["name"], [])})


async def queue(room: str, job: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tasks = []
    for item in items:
        task = {"id": str(uuid.uuid4()), "job_name": job, "room_id": room, "status": "pending"}
        task |= {"created_at": now(), "completed_at": None, "attempt": 1, "worker_id": None}
        task |= {"payload": item.get("payload", {}), "result": None}
        TASKS[task["id"]] = task
        PENDING.append(task["id"])
        tasks.append(task)
    await SIO.emit("task_available", {"job_name": job, "room_id": room})
    return tasks


async def submit_bulk(request: Request) -> JSONResponse:
    items = (await request.json())["items"]
    tasks = await queue(request.path_params["room"], request.path_params["job"], items)
    return JSONResponse({"items": tasks}, 202)


async def submit(request: Request) -> JSONResponse:
    item = await request.json()
    [task] = await queue(request.path_params["room"], request.path_params["job"], [item])
    return JSONResponse(task, 202)


async def read_task(request: Request) -> JSONResponse:
    """With Prefer: wait, polled until the task is done (5 ms steps; good enough here)."""
    task = TASKS[request.path_params["task_id"]]
    for _ in range(2000 if "wait=" in request.headers.get("prefer", "") else 0):
        if task["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.005)
    return JSONResponse(task)


async def claim_batch(request: Request) -> JSONResponse:
    body = await request.json()
    claimed = []
    while PENDING and len(claimed) < body["limit"]:
        task = TASKS[PENDING.popleft()]
        task |= {"status": "claimed", "worker_id": body["worker_id"]}
        claimed.append(task)
    return JSONResponse({"tasks": claimed})


async def report(request: Request) -> JSONResponse:
    outcomes = []
    for item in (await request.json())["items"]:
        task = TASKS[item["id"]]
        task["status"] = item["status"]
        task["result"] = item.get("result")
        if item["status"] in ("completed", "failed"):
            task["completed_at"] = now()
        outcomes.append({"id": item["id"], "applied": True, "task_status": task["status"]})
    return JSONResponse({"items": outcomes})


async def stats(request: Request) -> JSONResponse:
    room = request.path_params["room"]
    done = sum(1 for t in TASKS.values() if t["room_id"] == room and t["status"] == "completed")
    return JSONResponse({"jobs": [{"counts": {"completed": done}}]})


async def room_tasks(request: Request) -> JSONResponse:
    room = request.path_params["room"]
    mine = [t for t in TASKS.values() if t["room_id"] == room]
    offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
    return JSONResponse({"items": mine[offset : offset + limit], "total": len(mine)})


ROUTES = [
    Route("/v1/joblib/workers", create_worker, methods=["POST"]),
    Route("/v1/joblib/workers/{worker_id}", worker, methods=["PATCH", "DELETE"]),
    Route("/v1/joblib/rooms/{room}/jobs", register_job, methods=["PUT"]),
    Route("/v1/joblib/rooms/{room}/jobs/{name}", read_job, methods=["GET"]),
    Route("/v1/joblib/rooms/{room}/tasks/{job}/bulk", submit_bulk, methods=["POST"]),
    Route("/v1/joblib/rooms/{room}/tasks/{job}", submit, methods=["POST"]),
    Route("/v1/joblib/tasks/{task_id}", read_task, methods=["GET"]),
    Route("/v1/joblib/rooms/{room}/stats", stats, methods=["GET"]),
    Route("/v1/joblib/rooms/{room}/tasks", room_tasks, methods=["GET"]),
    Route("/v1/joblib/tasks/claim-batch", claim_batch, methods=["POST"]),
    Route("/v1/joblib/tasks", report, methods=["PATCH"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    app = socketio.ASGIApp(SIO, Starlette(routes=ROUTES))
    uvicorn.run(app, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
