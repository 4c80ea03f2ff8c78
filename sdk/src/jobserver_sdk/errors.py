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


class ServerUnavailable(JobserverSdkError):
    """The server could not be reached (or kept answering 502/503/504) within the retries."""


class JobFailed(JobserverSdkError):
    """The task ended `failed` (every attempt used up); `error` is the worker's report.

    Example:
        >>> try:
        ...     raise JobFailed("5f0c...", "ValueError: boom")
        ... except JobFailed as exc:
        ...     exc.error
        'ValueError: boom'
    """

    def __init__(self, task_id: str, error: str | None, info: Any = None) -> None:
        super().__init__(f"task {task_id} failed: {error}")
        self.task_id = task_id
        self.error = error
        self.info = info


class JobCancelled(JobFailed):
    """The task was cancelled before it completed."""


class ResultTimeout(JobserverSdkError, TimeoutError):
    """`Task.result(timeout=...)` ran out before the task finished."""
