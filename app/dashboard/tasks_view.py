"""The dashboard's Tasks view: a filtered, keyset-paged list and bulk cancel/retry of a
selection. The list comes from services/task_browse.py; each bulk action goes through
TaskService, task by task, exactly as the single actions do."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from app.api.deps import CoreDep, Session
from app.dashboard.routes import PREFIX, CheckedSession, PageSession, templates
from app.errors import BadRequest, Forbidden, JobserverError
from app.services import task_browse
from app.services.task_browse import Cursor, Filters
from app.services.tasks import scope

PAGE_SIZE = 50
BULK_LIMIT = 500
STATUSES = ("pending", "waiting", "claimed", "running", "completed", "failed", "cancelled")

router = APIRouter(prefix=PREFIX, include_in_schema=False)
audit = logging.getLogger("jobserver.audit")


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _when(value: str | None) -> datetime | None:
    """A `datetime-local` input (no zone: read as UTC), or a full ISO time."""
    text = _blank(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"'{text}' is not a date and time") from None


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(
    request: Request,
    db: Session,
    core: CoreDep,
    me: PageSession,
    room: str | None = None,
    job: str | None = None,
    status: str | None = None,
    worker: str | None = None,
    submitted_from: Annotated[str | None, Query(alias="from")] = None,
    submitted_to: Annotated[str | None, Query(alias="to")] = None,
    q: str | None = None,
    fingerprint: str | None = None,
    order: Literal["newest", "oldest"] = "newest",
    after: str | None = None,
    before: str | None = None,
) -> Response:
    worker_text = _blank(worker)
    try:
        worker_id = uuid.UUID(worker_text) if worker_text else None
    except ValueError:
        raise BadRequest(f"'{worker_text}' is not a worker id") from None
    limit = scope.limited_to(me.actor, core.settings.task_read_scope)
    filters = Filters(
        room=_blank(room),
        job=_blank(job),
        status=_blank(status),
        worker=worker_id,
        submitted_from=_when(submitted_from),
        submitted_to=_when(submitted_to),
        id_prefix=_blank(q),
        fingerprint=_blank(fingerprint),
        owner=scope.owned_by(limit) if limit is not None else None,
    )
    cursor_text = _blank(before) or _blank(after)
    cursor = Cursor.decode(cursor_text) if cursor_text else None
    direction: Literal["next", "prev"] = "prev" if _blank(before) else "next"
    page = await task_browse.browse(db, filters, order, cursor, direction, PAGE_SIZE)
    # Links keep the filters and swap only the cursor.
    kept = {
        k: v for k, v in request.query_params.items() if k not in ("after", "before") and v != ""
    }
    context: dict[str, Any] = {
        "me": me,
        "page": page,
        "kept": kept,
        "statuses": STATUSES,
        "can_act": me.actor.role != "viewer",
    }
    return templates.TemplateResponse(request, "tasks.html", context)


class Refusal(BaseModel):
    id: str
    status: int
    reason: str


class BulkOutcome(BaseModel):
    action: str
    requested: int
    done: int
    done_ids: list[str]
    refused: list[Refusal]


@router.post("/tasks-bulk/{action}")
async def bulk(
    action: Literal["cancel", "retry"],
    core: CoreDep,
    me: CheckedSession,
    ids: Annotated[list[str], Form()],
) -> BulkOutcome:
    """One request for the selection; each task is judged on its own, and the answer says
    which were done and why the others were refused."""
    if me.actor.role == "viewer":
        raise Forbidden(f"Viewers may not {action} tasks")
    unique = list(dict.fromkeys(ids))
    if len(unique) > BULK_LIMIT:
        raise BadRequest(f"At most {BULK_LIMIT} tasks at once")
    act = core.tasks.cancel if action == "cancel" else core.tasks.retry
    done: list[str] = []
    refused: list[Refusal] = []
    for text in unique:
        try:
            task_id = uuid.UUID(text)
        except ValueError:
            refused.append(Refusal(id=text, status=400, reason="not a task id"))
            continue
        try:
            await act(me.actor, task_id)
        except JobserverError as error:
            refused.append(Refusal(id=text, status=error.status, reason=error.detail))
        else:
            done.append(str(task_id))
    audit.info(
        "dashboard bulk %s",
        action,
        extra={
            "actor_id": str(me.actor.id),
            "actor_email": me.email,
            "action": f"bulk_{action}",
            "count": len(done),
            "task_ids": done,
            "refused_ids": [r.id for r in refused],
        },
    )
    return BulkOutcome(
        action=action, requested=len(unique), done=len(done), done_ids=done, refused=refused
    )
