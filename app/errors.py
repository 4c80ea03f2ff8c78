"""The domain error hierarchy. Pure Python: rendering to problem+json lives in api/problems.py.

Each class carries its HTTP status and title; the problem `type` is derived from the
class name (`TaskNotFound` -> `/v1/problems/task-not-found`), as the contract expects.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

PROBLEM_PREFIX = "/v1/problems/"


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class JobserverError(Exception):
    """Base of every error the server reports to clients."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @classmethod
    def problem_type(cls) -> str:
        return PROBLEM_PREFIX + kebab(cls.__name__)

    def response_headers(self) -> dict[str, str]:
        return dict(self.headers)

    def extensions(self) -> dict[str, Any]:
        """Members of the problem beyond type, title, status and detail (RFC 9457 3.2)."""
        return {}


class BadRequest(JobserverError):
    """The request is malformed in a way validation could not catch."""

    status = 400
    title = "Bad Request"


class NotFound(JobserverError):
    """The addressed resource does not exist."""

    status = 404
    title = "Not Found"


class Conflict(JobserverError):
    """The request conflicts with the current state of the resource."""

    status = 409
    title = "Conflict"


class JobNotFound(NotFound):
    """No active job has that full name."""


class ScheduleNotFound(NotFound):
    """No schedule has that id."""


class WorkerNotFound(NotFound):
    """No worker has that id (or it is not the caller's, where ownership matters)."""


class TaskNotFound(NotFound):
    """No task has that id."""


class ProviderNotFound(NotFound):
    """No provider has that name or id, or it is not visible from the room."""


class UserNotFound(NotFound):
    """No active user has that id."""


class SchemaConflict(Conflict):
    """The job exists with another schema; re-registration must keep the schema."""


class InternalJobNotPausable(Conflict):
    """@internal jobs run on the server's own executor and cannot be paused."""


class InvalidTaskTransition(Conflict):
    """The task state machine does not allow this change."""


class StaleAttempt(Conflict):
    """The report comes from an attempt of the task that is no longer current."""


class ParentEnded(Conflict):
    """A task named in `depends_on` already failed or was cancelled: its dependant would
    be cancelled at once."""


class InvalidCategory(BadRequest):
    """The category is not in the configured allow-list."""


class InvalidRoomId(BadRequest):
    """Room ids may not contain '@' or ':' (except @global and @internal)."""


class Forbidden(JobserverError):
    """The caller is authenticated but may not do this."""

    status = 403
    title = "Forbidden"


class NotAuthenticated(JobserverError):
    """Missing, invalid or expired token, or an inactive user."""

    status = 401
    title = "Unauthorized"


class UnprocessableContent(JobserverError):
    """The request body or parameters failed validation."""

    status = 422
    title = "Unprocessable Content"


class InvalidSchedule(UnprocessableContent):
    """A schedule's rule cannot be used: a bad cron expression, an unknown timezone, or
    not exactly one of `cron` and `every_seconds`."""


class UnknownParent(UnprocessableContent):
    """A task named in `depends_on` does not exist, is not readable by the submitter, or
    is not an earlier item of the same bulk submit."""


class InvalidPayload(UnprocessableContent):
    """A payload does not match its job's JSON Schema (the job asked for the check with
    `validate_payload`). `errors` lists each mismatch: `path`, a JSON Pointer into the
    request body, and `message`. Nothing of the request was stored."""

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail)
        self.errors = errors

    def extensions(self) -> dict[str, Any]:
        return {"errors": self.errors}


class UnusableSchema(UnprocessableContent):
    """The job asks for payload validation, but its schema is no valid JSON Schema
    (Draft 2020-12), or names a `$ref` that does not resolve within the schema itself
    (remote references are never fetched)."""


class PayloadTooLarge(JobserverError):
    """The body exceeds the configured size limit."""

    status = 413
    title = "Content Too Large"


class TooManyRequests(JobserverError):
    """Too many failed attempts (logins, registrations); try again after Retry-After."""

    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InternalJobNotConfigured(JobserverError):
    """An @internal job exists but this server has no executor for it."""

    status = 503
    title = "Service Unavailable"


class NotReady(JobserverError):
    """A dependency (database, Redis) is unreachable."""

    status = 503
    title = "Service Unavailable"


class ProviderTimeout(JobserverError):
    """The provider did not answer within the read's wait."""

    status = 504
    title = "Gateway Timeout"
    headers = {"Retry-After": "2"}  # noqa: RUF012 - read-only class constant


class StartupRefused(Exception):
    """The server must not start with this configuration; the message tells the admin why."""
