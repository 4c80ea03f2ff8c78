"""A FastAPI app that hands work to jobserver: POST /hello submits, GET /hello/{id} reads.

Run: `uv run uvicorn examples.fastapi_app.app:app --port 8001` with JOBSERVER_URL and
JOBSERVER_TOKEN set (see the README section "Python SDK").
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from jobserver_sdk import JobService

from examples.fastapi_app.jobs import ROOM, SayHello


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("JOBSERVER_URL", "http://127.0.0.1:8000")
    async with JobService(url, os.environ["JOBSERVER_TOKEN"], room=ROOM) as service:
        app.state.jobs = service
        yield


app = FastAPI(title="jobserver SDK example", lifespan=lifespan)


@app.post("/hello", status_code=202)
async def hello(
    request: Request,
    who: str = "world",
    delay: Annotated[float, Query(ge=0)] = 0,
) -> dict[str, str]:
    """Queue a greeting, run by a worker after `delay` seconds."""
    service: JobService = request.app.state.jobs
    task = await service.submit(SayHello(who=who), delay=delay)
    return {"task_id": str(task.id), "status": task.status}


@app.get("/hello/{task_id}")
async def hello_status(request: Request, task_id: uuid.UUID) -> dict[str, Any]:
    """The task's status, and its result once the worker completed it."""
    service: JobService = request.app.state.jobs
    info = await service.task(task_id).refresh()
    return {"status": info.status, "result": info.result, "error": info.error}
