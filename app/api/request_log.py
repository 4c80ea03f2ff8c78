"""One log line and one duration sample per HTTP request, the X-Request-ID header and the
security headers (api/security_headers.py).

Pure ASGI so that streaming answers (SSE, long-polls) pass through untouched. Only the
path is logged, never the query string: Socket.IO clients may carry a token there."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs, metrics
from app.api import security_headers

log = logging.getLogger("jobserver.http")
REQUEST_ID_HEADER = b"x-request-id"
# An upstream proxy's id is kept when it looks like an id, not like an injection.
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNMATCHED_ROUTE = "unmatched"


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            return text if _VALID_ID.match(text) else None
    return None


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/joblib/tasks/{task_id}`), never raw ids."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        context, token = logs.bind_request(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                security_headers.add(headers, scope["path"])
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            metrics.http_duration(scope["method"], route, status).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "user_id": context.user_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            logs.unbind_request(token)
