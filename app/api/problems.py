"""The one renderer of RFC 9457 problem+json, for our errors and FastAPI's own."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import PROBLEM_PREFIX, JobserverError, kebab
from app.services.payload_schemas import pointer

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# FastAPI/Starlette/fastapi-users raise HTTPException with these statuses.
STATUS_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad Request"),
    401: ("not-authenticated", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    413: ("content-too-large", "Content Too Large"),
    422: ("unprocessable-content", "Unprocessable Content"),
    429: ("too-many-requests", "Too Many Requests"),
    500: ("internal-server-error", "Internal Server Error"),
    503: ("service-unavailable", "Service Unavailable"),
}


def problem(
    status: int,
    type_: str,
    title: str,
    detail: Any,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _generic(
    status: int,
    detail: Any,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    slug, title = STATUS_PROBLEMS.get(status, (kebab(f"Http{status}"), "Error"))
    return problem(status, PROBLEM_PREFIX + slug, title, detail, headers, extensions)


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobserverError)
    headers = exc.response_headers()
    return problem(
        exc.status, exc.problem_type(), exc.title, exc.detail, headers or None, exc.extensions()
    )


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _generic(exc.status_code, exc.detail, dict(exc.headers) if exc.headers else None)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    """`body.items[2].priority`: keys dotted, list indexes in brackets."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _path(loc: tuple[Any, ...] | list[Any]) -> str:
    """A body error's place as a JSON Pointer into the body (as payload errors name
    theirs); a parameter's as `query.limit`, `path.task_id`, `header.prefer`."""
    if loc and loc[0] == "body":
        return pointer(list(loc[1:]))
    return _location(loc)


def _reason(error: dict[str, Any]) -> str:
    """The parser's own words for a body that is not JSON (e.g. a lone surrogate)."""
    if error.get("type") != "json_invalid":
        return ""
    return f" ({error.get('ctx', {}).get('error', 'invalid JSON')})"


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"path": _path(err.get("loc", ())), "message": f"{err.get('msg', '')}{_reason(err)}"}
        for err in exc.errors()
    ]
    detail = "; ".join(
        f"{_location(err.get('loc', ()))}: {err.get('msg', '')}{_reason(err)}"
        for err in exc.errors()
    )
    return _generic(422, detail, extensions={"errors": errors})


async def _on_unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return _generic(500, "The server failed to handle this request")


def install(app: FastAPI) -> None:
    app.add_exception_handler(JobserverError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unhandled)
