"""Run a job from the dashboard: /dashboard/jobs/{job_name}/run is a form built in the
browser (static/run.js) from the job's JSON schema; its POST submits through TaskService,
as the REST submit does, and the page then polls the new task's state until it ends."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from app.api.deps import CoreDep, Session
from app.api.json_route import StrictJsonRoute
from app.api.responses import JsonResponse
from app.api.schemas import task_body
from app.api.submit_options import MAX_PRIORITY
from app.dashboard.auth import DashboardSession
from app.dashboard.routes import PREFIX, CheckedSession, MaybeSession, PageSession, templates
from app.errors import JobNotFound, NotAuthenticated
from app.services import run_form
from app.services.tasks import scope
from app.services.tasks.submit import Submission, TaskOptions

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=StrictJsonRoute)
audit = logging.getLogger("jobserver.audit")


class RunIn(BaseModel):
    """The Run form's POST: where to run, and the task's input as a REST submit takes it
    (so a payload error's path reads `/payload/...` in both)."""

    room_id: str = Field(min_length=1, max_length=255)
    priority: int | None = Field(None, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    payload: dict[str, Any] = Field(default_factory=dict)


def _writer(me: CheckedSession) -> DashboardSession:
    """Viewers are refused before their body is read (403, not a 422 about the body)."""
    me.actor.require_writer()
    return me


def _reader(found: MaybeSession) -> DashboardSession:
    """A JSON read answers 401 without a session (a page would go to the sign-in form)."""
    if found is None:
        raise NotAuthenticated("Sign in to the dashboard first")
    return found


WriterSession = Annotated[DashboardSession, Depends(_writer)]
ReaderSession = Annotated[DashboardSession, Depends(_reader)]


@router.get("/jobs/{job_name}/run", response_class=HTMLResponse)
async def run_page(request: Request, job_name: str, db: Session, me: PageSession) -> Response:
    found = await run_form.collect(db, job_name)
    if found is None:
        raise JobNotFound(f"Job '{job_name}' not found")
    context: dict[str, Any] = {
        "me": me,
        "f": found,
        "schema": json.dumps(found.schema),
        "can_run": me.actor.role != "viewer",
    }
    return templates.TemplateResponse(request, "run.html", context)


@router.post("/jobs/{job_name}/run", status_code=status.HTTP_202_ACCEPTED)
async def run(job_name: str, body: RunIn, core: CoreDep, me: WriterSession) -> Response:
    """Submits one task; answers 202 with the task (the REST submit's TaskResponse)."""
    readable_by = scope.limited_to(me.actor, core.settings.task_read_scope)
    submission = Submission(body.payload, TaskOptions(priority=body.priority))
    submitted = await core.tasks.submit(me.actor, body.room_id, job_name, [submission], readable_by)
    task = submitted.views[0].task
    audit.info(
        "dashboard run %s",
        job_name,
        extra={
            "actor_id": str(me.actor.id),
            "actor_email": me.email,
            "action": "run",
            "job_name": job_name,
            "room_id": task.room_id,
            "task_ids": [task.id],
        },
    )
    return JsonResponse(task_body(submitted.views[0]), status.HTTP_202_ACCEPTED)


@router.get("/tasks/{task_id}/state")
async def task_state(task_id: uuid.UUID, core: CoreDep, me: ReaderSession) -> Response:
    """The task as the REST read answers it (read scope included); the Run page polls it."""
    reader = scope.reader_for(me.actor, core.settings.task_read_scope, core.tasks, core.store)
    view = await scope.read_visible(reader, task_id)
    return JsonResponse(task_body(view))
