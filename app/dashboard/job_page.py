"""The dashboard's job page: /dashboard/jobs/{job_name}, and its live part's stream.
Numbers from services/job_page.py, read on request (each read bounded, see there) and then
by the shared feed each second while the page is open; pause and resume are routes.py's."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from app.api.deps import CoreDep, Session
from app.dashboard.feed import Snapshot
from app.dashboard.routes import PREFIX, FeedDep, PageSession, event_stream, templates
from app.errors import JobNotFound
from app.services import job_page
from app.services.job_page import JobNow

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def chart_of(now: JobNow) -> dict[str, Any]:
    """The throughput chart's series, as static/charts.js reads them."""
    return {
        "start": int(now.chart_start.timestamp()),
        "completed": now.completed_per_minute,
        "failed": now.failed_per_minute,
    }


def render_now(now: JobNow) -> str:
    return templates.get_template("_job_live.html").render(n=now)


@router.get("/jobs/{job_name}", response_class=HTMLResponse)
async def job_view(request: Request, job_name: str, db: Session, me: PageSession) -> Response:
    found = await job_page.collect(db, job_name)
    if found is None:
        raise JobNotFound(f"Job '{job_name}' not found")
    context = {
        "me": me,
        "j": found,
        "chart": json.dumps(chart_of(found.now)),
        "can_act": me.actor.role != "viewer" and not found.internal,
        "can_run": me.actor.role != "viewer",
    }
    return templates.TemplateResponse(request, "job.html", context)


@router.get("/jobs/{job_name}/stream")
async def job_stream(job_name: str, core: CoreDep, _: PageSession, feed: FeedDep) -> Response:
    """Server-Sent Events: the job page's counts, queue and throughput, at most once a
    second, from the feed's shared read (a `pulse` until the feed has read the job)."""
    # A session of its own, closed before the stream starts (SQLite's pool has one).
    async with core.sessionmaker() as db:
        if await job_page.registered(db, job_name) is None:
            raise JobNotFound(f"Job '{job_name}' not found")

    def show(snapshot: Snapshot) -> tuple[str, dict[str, Any]]:
        now = snapshot.jobs.get(job_name)
        if now is None:
            return "pulse", {"at": snapshot.overview.generated_at.isoformat()}
        html = feed.rendered(snapshot.version, f"job:{job_name}", lambda: render_now(now))
        return "job", {"html": html, "chart": chart_of(now)}

    return event_stream(feed, show, job_name)
