"""The error inbox under /dashboard/failures: recent failed tasks grouped by fingerprint,
with one POST each to retry or cancel a whole group (through TaskService, audited)."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CoreDep, Session
from app.dashboard.auth import DashboardSession
from app.dashboard.routes import PREFIX, CheckedSession, PageSession, templates
from app.db.models import Task
from app.errors import Forbidden, JobserverError

# Grouped over the newest failures only, read through ix_tasks_status_seq: the page's cost
# stays bounded however large the tasks table grows.
WINDOW = 1000
FRAME = re.compile(r'^\s*File "[^"]*", line \d+, in .+$')

router = APIRouter(prefix=PREFIX, include_in_schema=False)
audit = logging.getLogger("jobserver.dashboard.audit")


def fingerprint_of(error: str | None, traceback: str | None) -> str:
    """The exception type plus its first line, or plus the innermost frame when a
    traceback exists (so messages carrying ids still group together)."""
    first = (error or "unknown error").strip().splitlines()[0] if error else "unknown error"
    kind = first.split(":", 1)[0].strip()
    frames = [line.strip() for line in (traceback or "").splitlines() if FRAME.match(line)]
    return f"{kind} @ {frames[-1]}" if frames else first


def key_of(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


@dataclass
class Group:
    fingerprint: str
    key: str
    sample: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    jobs: set[str] = field(default_factory=set)
    task_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.task_ids)

    def add(self, task: Task) -> None:
        self.task_ids.append(task.id)
        self.jobs.add(task.job_name)
        seen = task.completed_at or task.created_at
        self.first_seen = seen if self.first_seen is None else min(self.first_seen, seen)
        self.last_seen = seen if self.last_seen is None else max(self.last_seen, seen)


async def groups(db: AsyncSession, window: int = WINDOW) -> list[Group]:
    """Failure groups over the newest `window` failed tasks, the largest first."""
    rows = await db.scalars(
        select(Task).where(Task.status == "failed").order_by(Task.seq.desc()).limit(window)
    )
    found: dict[str, Group] = {}
    for task in rows:
        fingerprint = fingerprint_of(task.error, task.traceback)
        key = key_of(fingerprint)
        group = found.setdefault(key, Group(fingerprint, key, task.error or ""))
        group.add(task)
    return sorted(found.values(), key=lambda g: (-g.count, g.fingerprint))


async def _group(db: AsyncSession, key: str) -> Group | None:
    return next((g for g in await groups(db) if g.key == key), None)


@router.get("/failures", response_class=HTMLResponse)
async def failures(
    request: Request,
    db: Session,
    me: PageSession,
    group: str | None = None,
    retried: Annotated[list[uuid.UUID] | None, Query()] = None,
) -> Response:
    found = await groups(db)
    opened = next((g for g in found if g.key == group), None)
    context: dict[str, Any] = {
        "me": me,
        "groups": found,
        "opened": opened,
        "window": WINDOW,
        "retried": retried or [],
        "can_act": me.actor.role != "viewer",
    }
    return templates.TemplateResponse(request, "failures.html", context)


def _refuse_viewers(me: DashboardSession) -> None:
    if me.actor.role == "viewer":
        raise Forbidden("Viewers cannot change tasks")


async def _each(action: str, ids: list[uuid.UUID], core: CoreDep, me: DashboardSession) -> int:
    """Applies the TaskService action to each task; the ones it refuses are skipped."""
    done = 0
    for task_id in ids:
        try:
            if action == "retry":
                await core.tasks.retry(me.actor, task_id)
            else:
                await core.tasks.cancel(me.actor, task_id)
            done += 1
        except JobserverError:
            pass
    return done


@router.post("/failures/{key}/retry")
async def retry_all(key: str, db: Session, core: CoreDep, me: CheckedSession) -> Response:
    """Retries a group's failed tasks; the page then offers to cancel those retries (failed
    is terminal, so cancelling only makes sense for the retried, live tasks)."""
    _refuse_viewers(me)
    group = await _group(db, key)
    ids = group.task_ids if group else []
    done = await _each("retry", ids, core, me)
    audit.info("dashboard retry-all by %s: group %s: %d of %d", me.actor.id, key, done, len(ids))
    query = "&".join(f"retried={task_id}" for task_id in ids)
    return RedirectResponse(f"{PREFIX}/failures?{query}", status_code=303)


@router.post("/failures/cancel")
async def cancel_all(
    core: CoreDep, me: CheckedSession, task_id: Annotated[list[uuid.UUID], Form()]
) -> Response:
    """Cancels the listed tasks (a group's retries) that are still cancellable."""
    _refuse_viewers(me)
    done = await _each("cancel", task_id, core, me)
    audit.info("dashboard cancel-all by %s: %d of %d", me.actor.id, done, len(task_id))
    return RedirectResponse(f"{PREFIX}/failures", status_code=303)
