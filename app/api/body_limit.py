"""The request body limit: 413 problem+json before a body is parsed or even read.

Pure ASGI and cheap on the hot path: a declared Content-Length is judged up front and the
request then passes untouched (the server never delivers more than it declares); only a
body without one (chunked) has its bytes counted as the application reads them. Provider
result uploads have their own limit, which replaces the general one on that route."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.responses import problem_body
from app.errors import PayloadTooLarge

CONTENT_LENGTH = b"content-length"
PROVIDER_RESULTS = ("/v1/joblib/providers/", "/results")
BODILESS = frozenset({"GET", "HEAD"})


class BodyTooLarge(PayloadTooLarge, HTTPException):  # type: ignore[misc]  # both: see below
    """Raised from `receive` while a streamed body is read. FastAPI lets HTTPExceptions
    out of its body parsing unchanged (anything else becomes a 400), and the problem
    handlers match PayloadTooLarge first in the method resolution order."""

    def __init__(self, detail: str) -> None:
        PayloadTooLarge.__init__(self, detail)
        HTTPException.__init__(self, self.status, detail, headers={})

    @classmethod
    def problem_type(cls) -> str:
        return PayloadTooLarge.problem_type()


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


def _too_large(limit: int, what: str) -> str:
    return f"The {what} exceeds the limit of {limit} bytes"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_provider_result_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_provider_result_bytes = max_provider_result_bytes

    def _limit(self, path: str) -> tuple[int, str]:
        start, end = PROVIDER_RESULTS
        if path.endswith(end) and path.startswith(start):
            return self.max_provider_result_bytes, "provider result"
        return self.max_body_bytes, "request body"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self._limit(scope["path"])
        declared = _declared_length(scope)
        if declared is not None:
            if declared > limit:
                await _refuse(send, _too_large(limit, what))
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in BODILESS:  # no route of theirs reads a body: no counting
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(_too_large(limit, what))
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, detail: str) -> None:
    body = orjson.dumps(problem_body(PayloadTooLarge(detail)))
    await send(
        {
            "type": "http.response.start",
            "status": PayloadTooLarge.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                # The unread body is left on the connection: close it rather than parse it.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
