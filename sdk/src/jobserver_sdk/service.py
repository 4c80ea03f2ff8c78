"""`JobService` submits jobs and hands back `Task` handles to watch, cancel and await."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobserver_sdk.client import Client
from jobserver_sdk.errors import (
    ApiError,
    DeclarationConflict,
    JobCancelled,
    JobFailed,
    ResultTimeout,
)
from jobserver_sdk.job import Job, payload_of

JOBLIB = "/v1/joblib"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
# The server caps Prefer: wait (60 s by default); a longer result() wait re-polls.
LONG_POLL_SECONDS = 55
BULK_MAX = 1000
# A first-use declaration the caller may not make (403: another user's job, or @global
# without admin), or a server without declarations (404, 405), leaves the submit to tell.
DECLARE_SKIPPED = frozenset({403, 404, 405})


class TaskInfo(BaseModel):
    """A task as the server reports it."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    job_name: str
    room_id: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    worker_id: uuid.UUID | None = None
    error: str | None = None
    payload: dict[str, Any] = {}
    queue_position: int | None = None
    priority: int = 0
    run_at: datetime | None = None
    attempt: int = 1
    max_attempts: int = 1
    concurrency_key: str | None = None
    result: Any = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class Task:
    """A handle on one submitted task.

    Example:
        >>> task = await service.submit(SayHello(who="Ada"))
        >>> (await task.refresh()).status
        'pending'
        >>> await task.result(timeout=60)
        {'greeted': 'Ada'}
    """

    def __init__(self, client: Client, info: TaskInfo) -> None:
        self._client = client
        self.info = info

    @property
    def id(self) -> uuid.UUID:
        return self.info.id

    @property
    def status(self) -> str:
        """The status as of the last refresh."""
        return self.info.status

    def __repr__(self) -> str:
        return f"Task(id={self.id}, job={self.info.job_name!r}, status={self.status!r})"

    async def refresh(self) -> TaskInfo:
        """Read the task from the server."""
        self.info = TaskInfo.model_validate(
            await self._client.request("GET", f"{JOBLIB}/tasks/{self.id}")
        )
        return self.info

    async def cancel(self) -> TaskInfo:
        """Cancel the task (waiting, pending, claimed or running). A worker's later report on it is
        refused, so it never turns completed."""
        self.info = TaskInfo.model_validate(
            await self._client.request("POST", f"{JOBLIB}/tasks/{self.id}/cancel", safe=False)
        )
        return self.info

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - the SDK's documented API
        """Wait (long-polling) until the task finishes and return what `handle()` returned.

        Raises JobFailed (with the worker's error) once every attempt failed, JobCancelled
        if it was cancelled, ResultTimeout if `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        info = self.info
        while not info.done:
            wait = LONG_POLL_SECONDS
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ResultTimeout(f"task {self.id} still {info.status} after {timeout} s")
                wait = max(1, min(wait, int(remaining + 0.999)))
            body = await self._client.request(
                "GET",
                f"{JOBLIB}/tasks/{self.id}",
                headers={"Prefer": f"wait={wait}"},
                http_timeout=wait + 15,
            )
            info = self.info = TaskInfo.model_validate(body)
        if info.status == "failed":
            raise JobFailed(str(self.id), info.error, info)
        if info.status == "cancelled":
            raise JobCancelled(str(self.id), info.error, info)
        return info.result


class ScheduleInfo(BaseModel):
    """A schedule as the server reports it (`JobService.schedule`)."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    job_name: str
    room_id: str
    payload: dict[str, Any] = {}
    cron: str | None = None
    timezone: str = "UTC"
    every_seconds: float | None = None
    enabled: bool = True
    catch_up: bool = False
    next_fire_at: datetime | None = None
    last_fired_at: datetime | None = None


def _delay_seconds(delay: float | timedelta | None) -> float | None:
    if isinstance(delay, timedelta):
        return delay.total_seconds()
    return delay


class JobService:
    """Submit jobs to a room of a jobserver.

    `job_room` is where the job is registered (its workers' room); it defaults to `room`.
    Use "@global" for jobs registered globally by an admin's worker. The default `room`,
    "@global", is the contract's; an ordinary user's jobs live in a room of their own
    (declaring a job in "@global" needs an admin). For code without asyncio, see
    `SyncJobService`.

    Example:
        >>> async with JobService("http://127.0.0.1:8000", token, room="demo") as service:
        ...     task = await service.submit(SayHello(who="Ada"), delay=60, priority=5)
        ...     tasks = await service.submit_many([SayHello(who=n) for n in ("a", "b")])
        ...     print(await task.result(timeout=120))
    """

    def __init__(
        self,
        url: str,
        token: str,
        room: str = "@global",
        *,
        job_room: str | None = None,
        client: Client | None = None,
    ) -> None:
        self.room = room
        self.job_room = job_room or room
        self._own_client = client is None
        self.client = client or Client(url, token)
        self._declared: set[type[Job]] = set()
        # Classes whose declaration this user may not make (403): a later "job not found"
        # is explained by it.
        self._not_declarable: set[type[Job]] = set()

    async def __aenter__(self) -> JobService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    def _item(
        self,
        job: Job,
        delay: float | timedelta | None,
        priority: int | None,
        max_attempts: int | None,
        concurrency_key: str | None = None,
        after: Sequence[Task | uuid.UUID | str] = (),
    ) -> dict[str, Any]:
        # A fresh idempotency key makes the submit safe to retry after a lost answer.
        item: dict[str, Any] = {
            "payload": payload_of(job),
            "priority": type(job).priority if priority is None else priority,
            "max_attempts": type(job).max_attempts if max_attempts is None else max_attempts,
            "idempotency_key": uuid.uuid4().hex,
        }
        seconds = _delay_seconds(delay)
        if seconds:
            item["delay_seconds"] = seconds
        if concurrency_key is not None:
            item["concurrency_key"] = concurrency_key
        if after:
            item["depends_on"] = [str(t.id if isinstance(t, Task) else t) for t in after]
        return item

    async def declare(
        self,
        job_cls: type[Job],
        *,
        max_attempts: int | None = None,
        priority: int | None = None,
        timeout_seconds: float | None = None,
        max_running: int | None = None,
        max_running_per_key: int | None = None,
    ) -> dict[str, Any]:
        """Declare the job on the server, so its tasks queue before any worker runs; the
        settings given become its defaults and limits. Returns the job as the server
        reports it; DeclarationConflict when it exists there with another schema."""
        settings = {
            "max_attempts": max_attempts,
            "priority": priority,
            "timeout_seconds": timeout_seconds,
            "max_running": max_running,
            "max_running_per_key": max_running_per_key,
        }
        body = {**job_cls.registration(), **{k: v for k, v in settings.items() if v is not None}}
        path = f"{JOBLIB}/rooms/{self.job_room}/job-definitions"
        try:
            found: dict[str, Any] = await self.client.request("PUT", path, json=body)
        except ApiError as error:
            if error.status != 409:
                raise
            detail = f"{error.detail} (the class {job_cls.__name__} differs from the server's)"
            raise DeclarationConflict(error.status, error.type, detail) from error
        self._declared.add(job_cls)
        return found

    async def pause(self, job_cls: type[Job]) -> dict[str, Any]:
        """Stop claims of the job's tasks; submits are still accepted. Returns the job."""
        return await self._pause_or_resume(job_cls, "pause")

    async def resume(self, job_cls: type[Job]) -> dict[str, Any]:
        """Let the job's tasks be claimed again (waiting workers are woken)."""
        return await self._pause_or_resume(job_cls, "resume")

    async def _pause_or_resume(self, job_cls: type[Job], action: str) -> dict[str, Any]:
        path = f"{JOBLIB}/jobs/{job_cls.full_name(self.job_room)}/{action}"
        found: dict[str, Any] = await self.client.request("POST", path)
        return found

    async def _declare_once(self, job_cls: type[Job]) -> None:
        if job_cls in self._declared:
            return
        try:
            await self.declare(job_cls)
        except ApiError as error:
            if isinstance(error, DeclarationConflict) or error.status not in DECLARE_SKIPPED:
                raise
            self._declared.add(job_cls)
            if error.status == 403:
                self._not_declarable.add(job_cls)

    def _explain(self, error: ApiError, job_cls: type[Job]) -> ApiError:
        """A submit of a job nobody registered, with why when the room is the reason."""
        if error.slug != "job-not-found" or job_cls not in self._not_declarable:
            return error
        detail = (
            f"{error.detail}: no worker registered it in {self.job_room}, and declaring it "
            f"there needs an admin's token; use a room of your own, e.g. "
            f'JobService(url, token, room="demo")'
        )
        return ApiError(error.status, error.type, detail)

    async def submit(
        self,
        job: Job,
        *,
        delay: float | timedelta | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        concurrency_key: str | None = None,
        after: Sequence[Task | uuid.UUID | str] = (),
    ) -> Task:
        """Queue one task; it is not claimable before `delay` (seconds or a timedelta), nor
        before every task in `after` (handles or ids) completed: it is `waiting` until
        then, and cancelled if one of them fails or is cancelled. `concurrency_key` names
        what the job's `max_running_per_key` counts by (a tenant, a user, a resource).
        The job class is declared on first use, so no worker need be running yet."""
        await self._declare_once(type(job))
        path = f"{JOBLIB}/rooms/{self.room}/tasks/{type(job).full_name(self.job_room)}"
        item = self._item(job, delay, priority, max_attempts, concurrency_key, after)
        try:
            body = await self.client.request("POST", path, json=item)
        except ApiError as error:
            raise self._explain(error, type(job)) from None
        return Task(self.client, TaskInfo.model_validate(body))

    async def submit_many(
        self,
        jobs: Sequence[Job],
        *,
        delay: float | timedelta | None = None,
        priority: int | None = None,
        concurrency_key: str | None = None,
        after: Sequence[Task | uuid.UUID | str] = (),
    ) -> list[Task]:
        """Queue many tasks through the bulk endpoint (all or nothing per call of up to
        1,000, in order). Jobs of several classes are sent as one bulk call per class; a
        call larger than the server accepts (413, nothing stored) is sent again in halves.
        Each task waits for every task in `after`, as in `submit`."""
        by_class: dict[type[Job], list[int]] = {}
        for index, job in enumerate(jobs):
            by_class.setdefault(type(job), []).append(index)
        tasks: list[Task | None] = [None] * len(jobs)
        for cls, indexes in by_class.items():
            await self._declare_once(cls)
            path = f"{JOBLIB}/rooms/{self.room}/tasks/{cls.full_name(self.job_room)}/bulk"
            for start in range(0, len(indexes), BULK_MAX):
                chunk = indexes[start : start + BULK_MAX]
                items = [
                    self._item(jobs[i], delay, priority, None, concurrency_key, after)
                    for i in chunk
                ]
                try:
                    created = await self._bulk(path, items)
                except ApiError as error:
                    raise self._explain(error, cls) from None
                for i, raw in zip(chunk, created, strict=True):
                    tasks[i] = Task(self.client, TaskInfo.model_validate(raw))
        return [task for task in tasks if task is not None]

    async def _bulk(self, path: str, items: list[dict[str, Any]]) -> list[Any]:
        try:
            body = await self.client.request("POST", path, json={"items": items})
        except ApiError as error:
            if error.status != 413 or len(items) == 1:
                raise
            half = len(items) // 2
            return await self._bulk(path, items[:half]) + await self._bulk(path, items[half:])
        return list(body["items"])

    async def schedule(
        self,
        job: Job,
        *,
        cron: str | None = None,
        timezone: str = "UTC",
        every: float | timedelta | None = None,
        catch_up: bool = False,
    ) -> ScheduleInfo:
        """Have the server submit `job` by `cron` (read in `timezone`) or `every` (seconds or
        a timedelta), once per fire time. Not retried on a lost answer: a retry could
        create a second schedule. The job class is declared first, as by `submit`, so the
        schedule's job stays while no worker runs."""
        await self._declare_once(type(job))
        body = {
            "job_name": type(job).full_name(self.job_room),
            "room_id": self.room,
            "payload": payload_of(job),
            "cron": cron,
            "timezone": timezone,
            "every_seconds": _delay_seconds(every),
            "catch_up": catch_up,
            "priority": type(job).priority,
            "max_attempts": type(job).max_attempts,
        }
        found = await self.client.request("POST", f"{JOBLIB}/schedules", json=body, safe=False)
        return ScheduleInfo.model_validate(found)

    async def unschedule(self, schedule_id: uuid.UUID | str) -> None:
        """Delete a schedule; the tasks it submitted stay."""
        await self.client.request("DELETE", f"{JOBLIB}/schedules/{schedule_id}")

    def task(self, task_id: uuid.UUID | str) -> Task:
        """A handle on an existing task by id (call `refresh()` to load it)."""
        info = TaskInfo(
            id=uuid.UUID(str(task_id)),
            job_name="",
            room_id=self.room,
            status="unknown",
            created_at=datetime.min,
        )
        return Task(self.client, info)
