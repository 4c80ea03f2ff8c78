"""The running task's context: `self.context` inside `Job.handle()` (and `current_context()`
anywhere below it): which task, attempt, room and worker, and progress reports.

Progress reports never hold up a handler: the latest value is kept and sent in the
background, at most one request per second per task (the server stores at most one per
second too, and defers the rest); the last one is sent before the task's final status.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import traceback
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobserver_sdk.errors import ApiError, JobserverSdkError

if TYPE_CHECKING:
    from jobserver_sdk.client import Client

log = logging.getLogger("jobserver_sdk.worker")

PROGRESS_INTERVAL_SECONDS = 1.0
PROGRESS_RETRY_SECONDS = 5.0
MAX_MESSAGE_CHARS = 1000  # the server's limit
# The server keeps up to 32,000 characters; the ends of a longer traceback say the most.
MAX_TRACEBACK_CHARS = 16_000
CONFLICT = 409
NOT_FOUND = 404

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "jobserver_task_context", default=None
)


def current_context() -> TaskContext:
    """The context of the task whose `handle()` is running (in its task or thread)."""
    found = _current.get()
    if found is None:
        raise RuntimeError("no task runs here: a task context exists inside handle() only")
    return found


@dataclass(frozen=True)
class TaskInfo:
    """Which task a handler runs: the ids the server knows it by."""

    task_id: uuid.UUID
    attempt: int
    max_attempts: int
    room: str  # the room the task was submitted to
    job_name: str  # the job's full name, `room:category:name`
    worker_id: uuid.UUID


class TaskContext:
    """What a running handler knows of its task, and its progress reports.

    Example:
        >>> class Resize(Job):
        ...     images: list[str]
        ...     async def handle(self) -> None:
        ...         for done, image in enumerate(self.images, 1):
        ...             ...  # resize it
        ...             await self.context.progress(done / len(self.images), image)
    """

    def __init__(self, info: TaskInfo, client: Client) -> None:
        self.info = info
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._pending: tuple[float, str | None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._sent_at = -math.inf
        self._posting = False
        self._closed = False

    task_id = property(lambda self: self.info.task_id, doc="The task's id.")
    attempt = property(lambda self: self.info.attempt, doc="This attempt's number, from 1.")
    max_attempts = property(lambda self: self.info.max_attempts, doc="Attempts allowed.")
    room = property(lambda self: self.info.room, doc="The room the task was submitted to.")
    job_name = property(lambda self: self.info.job_name, doc="The job's full name.")
    worker_id = property(lambda self: self.info.worker_id, doc="The worker running it.")

    async def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress (0 to 1, and an optional message); returns at once. The server
        shows the latest value on the task and pushes it to the task's room."""
        self._queue(_checked(fraction, message))

    def progress_sync(self, fraction: float, message: str | None = None) -> None:
        """`progress()` for a plain `def handle()` (it runs in a thread): from any thread."""
        self._loop.call_soon_threadsafe(self._queue, _checked(fraction, message))

    def _queue(self, value: tuple[float, str | None]) -> None:
        if self._closed:
            return
        self._pending = value
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_pending())

    async def _send_pending(self) -> None:
        while self._pending is not None and not self._closed:
            wait = self._sent_at + PROGRESS_INTERVAL_SECONDS - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            value, self._pending = self._pending, None
            if value is not None:
                await self._post(value)

    async def _post(self, value: tuple[float, str | None]) -> None:
        self._sent_at = self._loop.time()
        self._posting = True
        body = {
            "worker_id": str(self.info.worker_id),
            "attempt": self.info.attempt,
            "progress": value[0],
            "message": value[1],
        }
        try:
            await self._client.request(
                "POST",
                f"/v1/joblib/tasks/{self.info.task_id}/progress",
                json=body,
                fenced=True,
                retry_seconds=PROGRESS_RETRY_SECONDS,
            )
        except ApiError as exc:
            if exc.status in (CONFLICT, NOT_FOUND):  # the attempt is over: no more reports
                self._closed = True
            log.info("progress of task %s refused: %s", self.info.task_id, exc)
        except JobserverSdkError as exc:
            log.warning("progress of task %s not delivered: %s", self.info.task_id, exc)
        finally:
            self._posting = False

    async def close(self) -> None:
        """Send the last report still waiting (before the task's final status), then take
        no more."""
        sender, self._sender = self._sender, None
        if sender is not None and not sender.done():
            if not self._posting:  # only waiting out the interval: the server defers
                sender.cancel()
            self._closed = True  # a request on the wire ends the loop once answered
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._closed = False
        value, self._pending = self._pending, None
        if value is not None and not self._closed:
            await self._post(value)
        self._closed = True


def _checked(fraction: float, message: str | None) -> tuple[float, str | None]:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:  # NaN fails too
        raise ValueError(f"progress is a fraction from 0 to 1, not {fraction!r}")
    if message is not None:
        message = str(message)[:MAX_MESSAGE_CHARS]
    return fraction, message


def bind(context: TaskContext) -> contextvars.Token[TaskContext | None]:
    """Make `context` the current one (for the handler's task and thread)."""
    return _current.set(context)


def unbind(token: contextvars.Token[TaskContext | None]) -> None:
    _current.reset(token)


def traceback_of(exc: BaseException) -> str:
    """The failure's traceback for the attempt history, its ends kept when too long."""
    text = "".join(traceback.format_exception(exc))
    if len(text) <= MAX_TRACEBACK_CHARS:
        return text
    half = MAX_TRACEBACK_CHARS // 2
    return f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"


class ContextAttribute:
    """`Job.context`. Unseen on the class (reading it there raises AttributeError), so
    pydantic leaves it alone and a job may still declare a field named `context` (as a
    non-data descriptor it then yields to the field; `current_context()` still works)."""

    def __get__(self, instance: Any, owner: type | None = None) -> TaskContext:
        if instance is None:
            raise AttributeError("context")
        found: TaskContext | None = (instance.__pydantic_private__ or {}).get("_task_context")
        if found is None:
            raise RuntimeError("no task runs here: a task context exists inside handle() only")
        return found
