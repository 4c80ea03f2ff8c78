"""The error inbox under /dashboard/failures: failed tasks grouped by fingerprint with
exact counts (services/failure_groups.py), a link to each group's tasks in the task list,
and one POST each to retry a whole group or cancel what it retried (through TaskService,
task by task, audited)."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api.deps import CoreDep, Session
from app.dashboard.auth import DashboardSession
from app.dashboard.routes import PREFIX, CheckedSession, PageSession, templates
from app.errors import BadRequest, Forbidden, JobserverError
from app.services import failure_groups
from app.services.failure_groups import Mark
from app.services.tasks.service import TaskService

# A group is walked this many tasks at a time, and one request acts on at most
# GROUP_ACTION_LIMIT of them: a larger group takes another press (the page says so).
GROUP_BATCH = 500
GROUP_ACTION_LIMIT = 10_000

router = APIRouter(prefix=PREFIX, include_in_schema=False)
audit = logging.getLogger("jobserver.audit")


async def _page(request: Request, db: Session, me: DashboardSession, **extra: Any) -> Response:
    context: dict[str, Any] = {
        "me": me,
        "groups": await failure_groups.groups(db),
        "can_act": me.actor.role != "viewer",
        "retried": [],
        "more": False,
        **extra,
    }
    return templates.TemplateResponse(request, "failures.html", context)


@router.get("/failures", response_class=HTMLResponse)
async def failures(request: Request, db: Session, me: PageSession) -> Response:
    return await _page(request, db, me)


def _refuse_viewers(me: DashboardSession, action: str) -> None:
    if me.actor.role == "viewer":
        raise Forbidden(f"Viewers may not {action} tasks")


async def _each(
    tasks: TaskService, action: str, ids: list[uuid.UUID], me: DashboardSession
) -> list[uuid.UUID]:
    """Applies the TaskService action to each task; returns those it did (the ones it
    refuses, e.g. a job gone or a task no longer failed, are skipped)."""
    act = tasks.retry if action == "retry" else tasks.cancel
    done = []
    for task_id in ids:
        try:
            await act(me.actor, task_id)
        except JobserverError:
            continue
        done.append(task_id)
    return done


def _audit(me: DashboardSession, action: str, done: list[uuid.UUID], **extra: Any) -> None:
    audit.info(
        "dashboard %s",
        action,
        extra={
            "actor_id": str(me.actor.id),
            "actor_email": me.email,
            "action": action,
            "count": len(done),
            "task_ids": [str(t) for t in done],
            **extra,
        },
    )


@router.post("/failures/{fingerprint}/retry", response_class=HTMLResponse)
async def retry_all(
    request: Request, fingerprint: str, db: Session, core: CoreDep, me: CheckedSession
) -> Response:
    """Retries every failed task of a group, a batch at a time (up to GROUP_ACTION_LIMIT
    per request). The answer is the inbox with a form to cancel those retries: failed is
    terminal, so only the retried, live tasks can be cancelled."""
    _refuse_viewers(me, "retry")
    retried: list[uuid.UUID] = []
    walked = 0
    mark: Mark | None = None
    while walked < GROUP_ACTION_LIMIT:
        limit = min(GROUP_BATCH, GROUP_ACTION_LIMIT - walked)
        ids, mark = await failure_groups.group_batch(db, fingerprint, mark, limit)
        if mark is None:
            break
        walked += len(ids)
        retried += await _each(core.tasks, "retry", ids, me)
    more = mark is not None and bool(
        (await failure_groups.group_batch(db, fingerprint, mark, 1))[0]
    )
    _audit(me, "group_retry", retried, fingerprint=fingerprint, walked=walked)
    return await _page(request, db, me, retried=retried, more=more)


def _task_ids(text: str) -> list[uuid.UUID]:
    words = text.split()
    if len(words) > GROUP_ACTION_LIMIT:
        raise BadRequest(f"At most {GROUP_ACTION_LIMIT} tasks at once")
    try:
        return [uuid.UUID(word) for word in dict.fromkeys(words)]
    except ValueError:
        raise BadRequest("task_ids holds something that is not a task id") from None


@router.post("/failures/cancel")
async def cancel_all(
    core: CoreDep, me: CheckedSession, task_ids: Annotated[str, Form()]
) -> Response:
    """Cancels the tasks a retry-all retried (space-separated ids, one form field) that
    are still cancellable."""
    _refuse_viewers(me, "cancel")
    ids = _task_ids(task_ids)
    done = await _each(core.tasks, "cancel", ids, me)
    _audit(me, "group_cancel", done, requested=len(ids))
    return RedirectResponse(f"{PREFIX}/failures", status_code=303)
