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
from fastapi.responses import JSONResponse
from jobserver_sdk import ApiError, JobService

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


@app.get(
    "/hello/{task_id}",
    response_model=None,
    responses={404: {"description": "No such task (RFC 9457 problem)"}},
)
async def hello_status(request: Request, task_id: uuid.UUID) -> dict[str, Any] | JSONResponse:
    """The task's status, and its result once the worker completed it."""
    service: JobService = request.app.state.jobs
    try:
        info = await service.task(task_id).refresh()
    except ApiError as error:
        if error.status != 404:
            raise
        return not_found(f"no task {task_id}")
    return {"status": info.status, "result": info.result, "error": info.error}


def not_found(detail: str) -> JSONResponse:
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": detail}
    return JSONResponse(problem, status_code=404, media_type="application/problem+json")
