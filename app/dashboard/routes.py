"""Dashboard pages and actions under /dashboard. Thin: sessions and CSRF from auth.py,
numbers from services/overview.py, task actions through TaskService."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, Depends, FastAPI, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CoreDep, Session
from app.api.schemas import JobResponse, TaskResponse
from app.dashboard import auth, times
from app.dashboard.auth import DashboardSession
from app.dashboard.feed import Feed, Show, Snapshot, events
from app.db.models import Task
from app.errors import BadRequest, Forbidden, NotAuthenticated, TaskNotFound, UserNotFound
from app.services import overview, passwords, pauses, throttle, tokens, users
from app.services.overview import Overview
from app.services.tasks import attempts, scope
from app.state import Core

HERE = Path(__file__).parent
PREFIX = "/dashboard"
USERS_PAGE = 50
STREAM_SECONDS = 5.0
RECONNECT_MS = 200
ROLES = ("viewer", "operator", "admin")

router = APIRouter(prefix=PREFIX, include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


class LoginRequired(Exception):
    """A page asked for without a session: the browser goes to the login form."""


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


templates.env.filters["age"] = _age
templates.env.filters["when"] = times.time_tag
templates.env.globals["server_now"] = times.server_now


def render_live(found: Overview, role: str) -> str:
    return templates.get_template("_live.html").render(o=found, role=role, can_act=role != "viewer")


async def _session(request: Request, core: CoreDep) -> DashboardSession | None:
    cookie = request.cookies.get(auth.COOKIE)
    found = auth.read(cookie, core.secret) if cookie else None
    if found is None:
        return None
    # A session of its own, closed at once: the SSE stream must not hold a connection
    # for as long as the browser stays (SQLite's pool has one).
    async with core.sessionmaker() as db:
        user = await users.get_active(db, found.user_id)
    # Sign-out, a password or role change end the cookie with the user's tokens.
    if user is None or user.token_generation != found.generation:
        return None
    return DashboardSession(
        users.actor_of(user), user.email, auth.csrf_token(found.session_id, core.secret)
    )


MaybeSession = Annotated[DashboardSession | None, Depends(_session)]


def _page_session(found: MaybeSession) -> DashboardSession:
    if found is None:
        raise LoginRequired
    return found


async def _checked_session(request: Request, found: MaybeSession) -> DashboardSession:
    """A session plus its CSRF token (header, or form field): every state change needs both."""
    if found is None:
        raise NotAuthenticated("Sign in to the dashboard first")
    sent = request.headers.get(auth.CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(auth.CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not auth.csrf_matches(found.csrf, sent):
        raise Forbidden("CSRF token missing or invalid")
    return found


PageSession = Annotated[DashboardSession, Depends(_page_session)]
CheckedSession = Annotated[DashboardSession, Depends(_checked_session)]


def _feed(core: CoreDep) -> Feed:
    assert core.dashboard_feed is not None
    return core.dashboard_feed


FeedDep = Annotated[Feed, Depends(_feed)]


# --- sign-in ------------------------------------------------------------------------
LOGIN_CSRF_COOKIE = "jobserver_login_csrf"


def _login_page(
    request: Request, core: CoreDep, error: str | None, status_code: int = 200
) -> Response:
    """The sign-in form with a fresh double-submit token: the form's hidden field and a
    SameSite=Strict cookie must match, so no other site can sign a browser in."""
    token = secrets.token_urlsafe(32)
    context = {"error": error, "csrf_token": token}
    response = templates.TemplateResponse(request, "login.html", context, status_code=status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request, core),
    )
    return response


def _secure(request: Request, core: CoreDep) -> bool:
    """Cookies are `Secure` when configured, and whenever the request came over HTTPS
    (behind a proxy that is https only when uvicorn trusts its forwarded headers)."""
    return core.settings.cookie_secure or request.url.scheme == "https"


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, core: CoreDep) -> Response:
    return _login_page(request, core, None)


@router.post("/login")
async def login(
    request: Request,
    core: CoreDep,
    db: Session,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    login_csrf: Annotated[str | None, Cookie(alias=LOGIN_CSRF_COOKIE)] = None,
) -> Response:
    if not login_csrf or not auth.csrf_matches(login_csrf, csrf_token):
        raise Forbidden("CSRF token missing or invalid")
    settings = core.settings
    account, address = throttle.limits_for(
        "login",
        email,
        request.client.host if request.client else None,
        settings.login_max_failures_per_account,
        settings.login_max_failures_per_address,
    )
    limits = [account] if address is None else [account, address]
    wait = await core.throttle.retry_after(limits)
    if wait is not None:
        page = _login_page(request, core, f"Too many failed sign-ins; try again in {wait} s", 429)
        page.headers["Retry-After"] = str(wait)
        return page
    user = await users.get_by_email(db, email)
    # Unknown emails are hashed too (passwords.verify_user): same time as a wrong password.
    verified, _ = await passwords.verify_user(
        password, user.hashed_password if user is not None else None
    )
    if not verified or user is None or not user.is_active:
        await core.throttle.failed(limits)
        return _login_page(request, core, "Wrong email or password", status_code=400)
    await core.throttle.succeeded(account)
    lifetime = settings.token_lifetime_seconds
    response = RedirectResponse(PREFIX, status_code=303)
    response.set_cookie(
        auth.COOKIE,
        auth.mint(user.id, core.secret, lifetime, user.token_generation),
        max_age=lifetime,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request, core),
    )
    return response


@router.post("/logout")
async def logout(me: CheckedSession, db: Session) -> Response:
    """Signing out ends the cookie, and with it every token of the user (its generation)."""
    user = await users.get_active(db, me.actor.id)
    if user is not None:
        users.revoke_tokens(user)
        await db.commit()
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


# --- pages --------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
async def home(request: Request, db: Session, me: PageSession) -> Response:
    found = await overview.collect(db)
    live = render_live(found, me.actor.role)
    return templates.TemplateResponse(request, "overview.html", {"me": me, "live": live})


@router.get("/stream")
async def stream(
    me: PageSession,
    feed: FeedDep,
    view: Literal["overview", "pulse"] = "overview",
) -> Response:
    """Server-Sent Events, at most one a second: the overview's live part (`overview`), or
    only its time (`pulse`: every other page's live indicator)."""
    role = me.actor.role

    def show(snapshot: Snapshot) -> tuple[str, dict[str, Any]]:
        if view == "pulse":
            return "pulse", {"at": snapshot.overview.generated_at.isoformat()}
        html = feed.rendered(snapshot.version, role, lambda: render_live(snapshot.overview, role))
        return "overview", {"html": html}

    return event_stream(feed, show)


def event_stream(feed: Feed, show: Show, job: str | None = None) -> Response:
    """The SSE answer: each stream ends after STREAM_SECONDS (see feed.events)."""
    found = events(feed, show, STREAM_SECONDS, RECONNECT_MS, job)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(found, media_type="text/event-stream", headers=headers)


@router.get("/find")
async def find(task_id: Annotated[str, Query()], _: PageSession) -> Response:
    try:
        found = uuid.UUID(task_id.strip())
    except ValueError:
        raise TaskNotFound(f"Task '{task_id}' not found") from None
    return RedirectResponse(f"{PREFIX}/tasks/{found}", status_code=303)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, task_id: str, db: Session, core: CoreDep, me: PageSession
) -> Response:
    try:
        task = await overview.find_task(db, uuid.UUID(task_id))
    except ValueError:
        task = None
    if task is not None and not await _may_read(core, me, task):
        task = None
    if task is None:
        raise TaskNotFound(f"Task '{task_id}' not found")
    context: dict[str, Any] = {
        "me": me,
        "task": task,
        "payload": json.dumps(task.payload, indent=2, default=str),
        "result": json.dumps(task.result, indent=2, default=str),
        "can_act": me.actor.role != "viewer",
        "attempts": await attempts.history(db, task),
    }
    return templates.TemplateResponse(request, "task.html", context)


async def _may_read(core: CoreDep, me: DashboardSession, task: Task) -> bool:
    """The REST read scope (services/tasks/scope.py) holds on the dashboard too."""
    limit = scope.limited_to(me.actor, core.settings.task_read_scope)
    if limit is None:
        return True
    created_by = str(task.created_by) if task.created_by else None
    worker_id = str(task.worker_id) if task.worker_id else None
    return await scope.may_read(core.store, limit, created_by, worker_id)


# --- operator actions -----------------------------------------------------------------
@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: uuid.UUID, core: CoreDep, me: CheckedSession) -> Any:
    return TaskResponse.of(await core.tasks.cancel(me.actor, task_id))


@router.post("/tasks/{task_id}/retry")
async def retry(task_id: uuid.UUID, core: CoreDep, me: CheckedSession) -> Any:
    return TaskResponse.of(await core.tasks.retry(me.actor, task_id))


async def _set_paused(job_name: str, paused: bool, core: Core, me: DashboardSession) -> Any:
    """The REST pause/resume, for the job's registrant or an admin."""
    async with core.sessionmaker() as db:
        view, events = await pauses.set_paused(db, me.actor, job_name, paused)
        await db.commit()
    await core.publisher.publish(events)
    return JobResponse.of(view)


@router.post("/jobs/{job_name}/pause")
async def pause(job_name: str, core: CoreDep, me: CheckedSession) -> Any:
    return await _set_paused(job_name, True, core, me)


@router.post("/jobs/{job_name}/resume")
async def resume(job_name: str, core: CoreDep, me: CheckedSession) -> Any:
    return await _set_paused(job_name, False, core, me)


# --- admin ----------------------------------------------------------------------------
@router.get("/users", response_class=HTMLResponse)
async def users_page(
    request: Request, db: Session, me: PageSession, offset: Annotated[int, Query(ge=0)] = 0
) -> Response:
    return await _users_view(request, db, me, offset, None)


async def _users_view(
    request: Request,
    db: AsyncSession,
    me: DashboardSession,
    offset: int,
    minted: dict[str, str] | None,
) -> Response:
    me.actor.require_admin()
    page, total = await overview.list_users(db, offset, USERS_PAGE)
    context = {
        "me": me,
        "users": page,
        "total": total,
        "offset": offset,
        "page_size": USERS_PAGE,
        "roles": ROLES,
        "minted": minted,
    }
    return templates.TemplateResponse(request, "users.html", context)


@router.post("/users/{user_id}/role")
async def set_role(
    user_id: uuid.UUID, db: Session, me: CheckedSession, role: Annotated[str, Form()]
) -> Response:
    me.actor.require_admin()
    if user_id == me.actor.id:
        raise BadRequest("Admins cannot change their own role here")
    user = await users.get_active(db, user_id)
    if user is None:
        raise UserNotFound("User not found")
    await users.set_role(db, user.email, role)
    await db.commit()
    return RedirectResponse(f"{PREFIX}/users", status_code=303)


@router.post("/users/{user_id}/token", response_class=HTMLResponse)
async def mint_token(
    request: Request, user_id: uuid.UUID, core: CoreDep, db: Session, me: CheckedSession
) -> Response:
    """The token is shown once on the page and nowhere else (never logged)."""
    me.actor.require_admin()
    user = await users.get_active(db, user_id)
    if user is None:
        raise UserNotFound("User not found")
    token = tokens.mint(
        user.id,
        core.secret,
        core.settings.token_lifetime_seconds,
        generation=user.token_generation,
        impersonated_by=me.actor.id,
    )
    return await _users_view(request, db, me, 0, {"email": user.email, "token": token})


async def _to_login(request: Request, _: Exception) -> Response:
    return RedirectResponse(f"{PREFIX}/login", status_code=303)


def include(app: FastAPI) -> None:
    # They build on this module's sessions: imported here, included after its router.
    from app.dashboard import inbox, job_page, run_job, tasks_view

    app.include_router(router)
    app.include_router(tasks_view.router)
    app.include_router(job_page.router)
    app.include_router(inbox.router)
    app.include_router(run_job.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    app.add_exception_handler(LoginRequired, _to_login)
