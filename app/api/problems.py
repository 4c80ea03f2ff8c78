"""The one renderer of RFC 9457 problem+json, for our errors and FastAPI's own."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import PROBLEM_PREFIX, JobserverError, kebab

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
    status: int, type_: str, title: str, detail: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _generic(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    slug, title = STATUS_PROBLEMS.get(status, (kebab(f"Http{status}"), "Error"))
    return problem(status, PROBLEM_PREFIX + slug, title, detail, headers)


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobserverError)
    headers = exc.response_headers()
    return problem(exc.status, exc.problem_type(), exc.title, exc.detail, headers or None)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _generic(exc.status_code, exc.detail, dict(exc.headers) if exc.headers else None)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _reason(error: dict[str, Any]) -> str:
    """The parser's own words for a body that is not JSON (e.g. a lone surrogate)."""
    if error.get("type") != "json_invalid":
        return ""
    return f" ({error.get('ctx', {}).get('error', 'invalid JSON')})"


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = "; ".join(
        f"{_location(err.get('loc', ()))}: {err.get('msg', '')}{_reason(err)}"
        for err in exc.errors()
    )
    return _generic(422, detail)


async def _on_unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return _generic(500, "The server failed to handle this request")


def install(app: FastAPI) -> None:
    app.add_exception_handler(JobserverError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unhandled)
