"""Structured logs: one formatter for JSON lines, one for readable console lines, the
request context (request id, user id) they stamp on every record, and secret redaction."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMATS = ("console", "json")
# Attributes every LogRecord has; anything else was passed through `extra=`
# (uvicorn's color_message repeats the message with terminal escapes).
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)
# Defence in depth: whatever a library logs, a bearer token, a JWT or a password field
# never reaches the output.
_SECRETS = (
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), "[jwt]"),
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)((?:password|secret|token)[\"']?\s*[:=]\s*[\"']?)[^\s&\"',}]+"),
        r"\1[redacted]",
    ),
)


@dataclass
class RequestContext:
    """Mutable on purpose: the auth dependency fills in user_id after the middleware set it."""

    request_id: str
    user_id: str | None = None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "jobserver_request", default=None
)


def bind_request(request_id: str) -> tuple[RequestContext, contextvars.Token[Any]]:
    context = RequestContext(request_id)
    return context, _current.set(context)


def unbind_request(token: contextvars.Token[Any]) -> None:
    _current.reset(token)


def set_user(user_id: object) -> None:
    """Record who the current request acts as (no-op outside a request)."""
    context = _current.get()
    if context is not None:
        context.user_id = str(user_id)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    context = _current.get()
    if context is not None:
        fields["request_id"] = context.request_id
        if context.user_id is not None:
            fields["user_id"] = context.user_id
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_") and value is not None:
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            text = f"{text}  {extras}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return redact(text)


def configure(log_format: str, level: str) -> None:
    """Route every logger (ours, uvicorn's, libraries') through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware logs each request; uvicorn's access line would print query strings.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
