"""Errors the SDK raises: server problems, failed tasks, and result waits that ran out."""

from __future__ import annotations

from typing import Any


class JobserverSdkError(Exception):
    """Base of every error the SDK raises."""


class ApiError(JobserverSdkError):
    """The server answered with an error (its RFC 9457 problem, when it sent one).

    Example:
        >>> err = ApiError(404, "/v1/problems/task-not-found", "Task 'x' not found")
        >>> err.slug
        'task-not-found'
    """

    def __init__(
        self, status: int, type_: str, detail: str, errors: list[Any] | None = None
    ) -> None:
        super().__init__(f"{status} {type_}: {detail}")
        self.status = status
        self.type = type_
        self.detail = detail
        # Each mismatch of a 422 (a payload against its job's schema, or the body):
        # `{"path": <JSON Pointer>, "message": ...}`.
        self.errors: list[Any] = errors or []

    @property
    def slug(self) -> str:
        """The problem type's last path segment, e.g. `invalid-task-transition`."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class DeclarationConflict(ApiError):
    """The job exists on the server with another schema (409): the class changed since
    its workers registered it, or two classes share a name."""


class TokenRejected(ApiError):
    """The server refused the token (401): it expired, was revoked (logout, password or role
    change) or was never valid. Retrying cannot help; a worker stops on it."""

    def __init__(self, url: str, type_: str, detail: str) -> None:
        super().__init__(401, type_, detail)
        self.url = url
        self.args = (
            f"token rejected by {url} ({detail}): it expired or was revoked; make a new one "
            "with `jobserver token EMAIL` (or log in again)",
        )


class Forbidden(ApiError):
    """The token is valid but its user may not do this (403), e.g. register jobs in
    `@global` without being an admin."""


class ServerUnavailable(JobserverSdkError):
    """The server could not be reached (or kept answering 502/503/504) within the retries."""


class ServerUnreachable(ServerUnavailable):
    """No connection to the server could be made: `url` is the server's URL as given,
    `cause` why (connection refused, unknown host, timed out).

    Example:
        >>> str(ServerUnreachable("http://127.0.0.1:8000", "Connection refused"))
        'cannot reach the jobserver at http://127.0.0.1:8000: Connection refused'
    """

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"cannot reach the jobserver at {url}: {cause}")
        self.url = url
        self.cause = cause


class TaskNotCompleted(JobserverSdkError):
    """The task ended without a result: `JobFailed` or `JobCancelled`."""

    def __init__(self, task_id: str, error: str | None, info: Any = None) -> None:
        super().__init__(self.describe(task_id, error))
        self.task_id = task_id
        self.error = error
        self.info = info

    @staticmethod
    def describe(task_id: str, error: str | None) -> str:
        return f"task {task_id} ended: {error}"


class JobFailed(TaskNotCompleted):
    """The task ended `failed` (every attempt used up); `error` is the worker's report.

    Example:
        >>> try:
        ...     raise JobFailed("5f0c...", "ValueError: boom")
        ... except JobFailed as exc:
        ...     exc.error
        'ValueError: boom'
    """

    @staticmethod
    def describe(task_id: str, error: str | None) -> str:
        return f"task {task_id} failed: {error}"


class JobCancelled(TaskNotCompleted):
    """The task was cancelled before it completed (by a user, or because a task it waited
    for failed or was cancelled); not a failure: no attempt of it failed. `error` is the
    server's reason when it gave one.

    Example:
        >>> str(JobCancelled("5f0c...", None))
        'task 5f0c... cancelled'
    """

    @staticmethod
    def describe(task_id: str, error: str | None) -> str:
        reason = "" if error in (None, "", "cancelled") else f": {error}"
        return f"task {task_id} cancelled{reason}"


TaskCancelled = JobCancelled


class ResultTimeout(JobserverSdkError, TimeoutError):
    """`Task.result(timeout=...)` ran out before the task finished."""
