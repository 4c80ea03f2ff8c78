"""The dashboard's job page: /dashboard/jobs/{job_name}. Numbers from services/job_page.py,
read on request (each read bounded, see there); pause and resume are routes.py's."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from app.api.deps import Session
from app.dashboard.routes import PREFIX, PageSession, templates
from app.errors import JobNotFound
from app.services import job_page

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/jobs/{job_name}", response_class=HTMLResponse)
async def job_view(request: Request, job_name: str, db: Session, me: PageSession) -> Response:
    found = await job_page.collect(db, job_name)
    if found is None:
        raise JobNotFound(f"Job '{job_name}' not found")
    chart = {
        "start": int(found.chart_start.timestamp()),
        "completed": found.completed_per_minute,
        "failed": found.failed_per_minute,
    }
    context = {
        "me": me,
        "j": found,
        "chart": json.dumps(chart),
        "can_act": me.actor.role != "viewer" and not found.internal,
        "can_run": me.actor.role != "viewer",
    }
    return templates.TemplateResponse(request, "job.html", context)
