"""`SyncJobService`: `JobService` for code without an event loop (scripts, Flask, Django).

Every call runs the async `JobService` on an event loop of the service's own, in a thread
of its own, and blocks until it is done; so it works from any thread, and even from
inside someone else's running loop (a notebook).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from jobserver_sdk.job import Job
from jobserver_sdk.service import JobService, ScheduleInfo, Task, TaskInfo

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread; `run` blocks the caller on a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="jobserver-sdk-sync", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if not self.loop.is_running():
            coroutine.close()
            raise RuntimeError("this SyncJobService is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


class SyncTask:
    """A blocking handle on one submitted task (see `Task`).

    Example:
        >>> task = service.submit(SayHello(who="Ada"))
        >>> task.result(timeout=60)
        {'greeted': 'Ada'}
    """

    def __init__(self, task: Task, runner: _LoopThread) -> None:
        self._task = task
        self._runner = runner

    @property
    def id(self) -> uuid.UUID:
        return self._task.id

    @property
    def status(self) -> str:
        """The status as of the last refresh."""
        return self._task.status

    @property
    def info(self) -> TaskInfo:
        return self._task.info

    def __repr__(self) -> str:
        return repr(self._task)

    def refresh(self) -> TaskInfo:
        """Read the task from the server."""
        return self._runner.run(self._task.refresh())

    def cancel(self) -> TaskInfo:
        """Cancel the task (see `Task.cancel`)."""
        return self._runner.run(self._task.cancel())

    def result(self, timeout: float | None = None) -> Any:
        """Block until the task finishes and return its result; JobFailed, JobCancelled or
        ResultTimeout otherwise (see `Task.result`)."""
        return self._runner.run(self._task.result(timeout=timeout))


class SyncJobService:
    """Submit jobs from synchronous code: the methods of `JobService`, blocking.

    Example:
        >>> with SyncJobService("http://127.0.0.1:8000", token, room="demo") as service:
        ...     task = service.submit(SayHello(who="Ada"), delay=5)
        ...     print(task.result(timeout=60))
    """

    def __init__(
        self, url: str, token: str, room: str = "@global", *, job_room: str | None = None
    ) -> None:
        # Built here, not on the loop: a malformed URL is refused in the caller's thread.
        self.service = JobService(url, token, room, job_room=job_room)
        self._runner = _LoopThread()

    @property
    def room(self) -> str:
        return self.service.room

    def __enter__(self) -> SyncJobService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the service's thread."""
        if self._runner.loop.is_running():
            self._runner.run(self.service.aclose())
        self._runner.stop()

    def submit(
        self,
        job: Job,
        *,
        delay: float | timedelta | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        concurrency_key: str | None = None,
        after: Sequence[SyncTask | Task | uuid.UUID | str] = (),
    ) -> SyncTask:
        """Queue one task (see `JobService.submit`)."""
        task = self._runner.run(
            self.service.submit(
                job,
                delay=delay,
                priority=priority,
                max_attempts=max_attempts,
                concurrency_key=concurrency_key,
                after=_ids(after),
            )
        )
        return SyncTask(task, self._runner)

    def submit_many(
        self,
        jobs: Sequence[Job],
        *,
        delay: float | timedelta | None = None,
        priority: int | None = None,
        concurrency_key: str | None = None,
        after: Sequence[SyncTask | Task | uuid.UUID | str] = (),
    ) -> list[SyncTask]:
        """Queue many tasks through the bulk endpoint (see `JobService.submit_many`)."""
        tasks = self._runner.run(
            self.service.submit_many(
                jobs,
                delay=delay,
                priority=priority,
                concurrency_key=concurrency_key,
                after=_ids(after),
            )
        )
        return [SyncTask(task, self._runner) for task in tasks]

    def task(self, task_id: uuid.UUID | str) -> SyncTask:
        """A handle on an existing task by id (call `refresh()` to load it)."""
        return SyncTask(self.service.task(task_id), self._runner)

    def declare(self, job_cls: type[Job], **settings: Any) -> dict[str, Any]:
        """Declare the job on the server (see `JobService.declare`)."""
        return self._runner.run(self.service.declare(job_cls, **settings))

    def pause(self, job_cls: type[Job]) -> dict[str, Any]:
        return self._runner.run(self.service.pause(job_cls))

    def resume(self, job_cls: type[Job]) -> dict[str, Any]:
        return self._runner.run(self.service.resume(job_cls))

    def schedule(self, job: Job, **when: Any) -> ScheduleInfo:
        """Have the server submit `job` on a schedule (see `JobService.schedule`)."""
        return self._runner.run(self.service.schedule(job, **when))

    def unschedule(self, schedule_id: uuid.UUID | str) -> None:
        self._runner.run(self.service.unschedule(schedule_id))


def _ids(tasks: Sequence[SyncTask | Task | uuid.UUID | str]) -> list[uuid.UUID | str]:
    return [t.id if isinstance(t, SyncTask | Task) else t for t in tasks]
