"""`Worker`: registers job classes, claims their tasks and runs `handle()` on each.

Wake-ups come over Socket.IO (`task_available`); while the socket is down the worker
polls with backoff. Claims take as many tasks as there are free slots in one call, and
status reports travel in batches (`reports.py`). Every report names its attempt and
worker (fencing), so a report from an attempt the server already gave up on is refused
instead of applied. Heartbeats come from a thread (`identity.py`), so a handler that
blocks the event loop does not lose its task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from jobserver_sdk import context as task_context
from jobserver_sdk.client import CONNECT_SECONDS, Client, Link, Socket, backoff, check_url
from jobserver_sdk.errors import ApiError, JobserverSdkError, TokenRejected
from jobserver_sdk.identity import Identity
from jobserver_sdk.job import Job
from jobserver_sdk.reports import Report, Reporter

log = logging.getLogger("jobserver_sdk.worker")

JOBLIB = "/v1/joblib"
MAX_CLAIM = 100  # the server's cap on one claim-batch
# With the socket up a lost wake-up costs at most this; without it, polling backs off to it.
IDLE_POLL_SECONDS = 5.0
# A handle() still running after this starts a long-poll on its task to notice a cancel.
WATCH_AFTER_SECONDS = 1.0
# `ready` waits this long for the socket to join the job rooms (polling works without).
JOIN_WAIT_SECONDS = 5.0
# On stop, reports and releases are retried this long before they are given up.
FLUSH_ON_STOP_SECONDS = 60.0


@dataclass
class Claimed:
    """A task this worker holds: enough to run it and to fence its reports."""

    id: str
    job: type[Job]
    attempt: int
    payload: dict[str, Any]
    max_attempts: int = 1
    room: str = ""
    job_name: str = ""

    def report(
        self,
        status: str,
        *,
        error: str | None = None,
        result: Any = None,
        traceback: str | None = None,
    ) -> Report:
        try:
            size = 0 if result is None else len(json.dumps(result))
        except (TypeError, ValueError) as exc:
            # Refused here, as this task's failure: sent as it is, it would break the
            # encoding of the whole batch of reports it travels in.
            message = f"result is not JSON-serialisable: {type(exc).__name__}: {exc}"
            return Report(self.id, self.attempt, "failed", message, None, 0)
        return Report(self.id, self.attempt, status, error, result, size, traceback)


class Worker:
    """Runs the tasks of `jobs` registered in `room`, up to `concurrency` at a time.

    Example:
        >>> worker = Worker(url, token, jobs=[SayHello], room="demo", concurrency=8)
        >>> await worker.run()  # until SIGTERM/SIGINT or worker.stop()

    `async def handle()` runs on the event loop; `def handle()` runs in a thread of the
    worker's own pool (one per slot). On stop: no new claims; running tasks get
    `grace_seconds` to finish, the rest are released (back to the queue without spending
    an attempt, so another worker runs them), and the worker is deleted on the server.

    A server that does not answer within `connect_seconds` at the start ends `run()` with
    ServerUnreachable; once registered, the worker rides out lost connections (one log
    line when lost, one when back). A refused token (401) stops it without grace and
    `run()` raises TokenRejected. Each task run logs one INFO line on
    `jobserver_sdk.worker`: job, task id, attempt, outcome, duration.
    """

    def __init__(
        self,
        url: str,
        token: str,
        jobs: Sequence[type[Job]],
        room: str = "@global",
        *,
        concurrency: int = 8,
        grace_seconds: float = 30.0,
        heartbeat_seconds: float = 15.0,
        handle_signals: bool = True,
        connect_seconds: float = CONNECT_SECONDS,
    ) -> None:
        if not jobs:
            raise ValueError("a worker needs at least one job class")
        self.link = Link(check_url(url), log, connect_seconds)
        self.client = Client(url, token, link=self.link)
        self.room = room
        self.jobs = {cls.full_name(room): cls for cls in jobs}
        self.concurrency = concurrency
        self.grace_seconds = grace_seconds
        self.handle_signals = handle_signals
        self.identity = Identity(
            url, token, room, jobs, heartbeat_seconds=heartbeat_seconds, link=self.link
        )
        self.reporter = Reporter(self.client, self.identity.id)
        self.running: dict[str, asyncio.Task[None]] = {}
        # Tasks held and not yet given a final report: what a stop must release.
        self.claims: dict[str, Claimed] = {}
        # Set once the jobs are registered and the socket listens for their tasks (or
        # JOIN_WAIT_SECONDS passed without a socket): a task submitted now wakes us.
        self.ready = asyncio.Event()
        self._joined = asyncio.Event()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._socket: Socket | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._background: set[asyncio.Task[None]] = set()
        # What ended the worker on its own (a rejected token): run() raises it.
        self._fatal: JobserverSdkError | None = None

    @property
    def worker_id(self) -> uuid.UUID:
        """The worker's id on the server, the same for the worker's whole life."""
        return self.identity.id

    # --- lifecycle --------------------------------------------------------------------
    def stop(self) -> None:
        """Ask `run()` to shut down gracefully; safe to call from a signal handler."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Register, then claim and run tasks until stopped. Raises ServerUnreachable when
        the server cannot be reached at the start (within `connect_seconds`), and
        TokenRejected (after a stop without grace) when the server refuses the token."""
        loop = asyncio.get_running_loop()
        signals = self._install_signals(loop)

        def token_rejected(exc: TokenRejected) -> None:  # from any thread
            loop.call_soon_threadsafe(self._fail, exc)

        self.link.on_token_rejected = token_rejected

        def registered() -> None:  # called from the registering thread
            loop.call_soon_threadsafe(self._registered)

        self.identity.on_registered = registered
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="jobserver-handle")
        try:
            await asyncio.to_thread(self.identity.register)
            self.identity.start_heartbeats()
            self.reporter.start()
            self._socket = self._open_socket()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._joined.wait(), JOIN_WAIT_SECONDS)
            self.ready.set()
            try:
                await self._claim_loop()
            finally:
                await self._drain()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            if self._socket is not None:
                await self._socket.close()
            await asyncio.to_thread(self.identity.close)
            self._threads.shutdown(wait=False, cancel_futures=True)
            await self.client.aclose()
        if self._fatal is not None:
            raise self._fatal

    def _fail(self, exc: JobserverSdkError) -> None:
        """Stop at once on an error no retry can mend (the token was refused): running
        tasks could not report anyway."""
        if self._fatal is not None:
            return
        self._fatal = exc  # said once, by run() raising it
        self.grace_seconds = 0
        self.stop()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        if not self.handle_signals:
            return []
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no signal support on this loop
            installed.append(sig)
        return installed

    def _open_socket(self) -> Socket:
        sock = self.client.socket()

        async def on_task_available(_data: Any) -> None:
            self._wake.set()

        async def on_connect() -> None:
            self._spawn_join()

        sock.on("task_available", on_task_available)
        sock.on_connect.append(on_connect)
        sock.start()
        return sock

    def _spawn_join(self) -> None:
        join = asyncio.create_task(self._join())
        self._background.add(join)
        join.add_done_callback(self._background.discard)

    async def _join(self) -> None:
        """Join every job's room, each acknowledged, then look for tasks that arrived while
        the socket was down."""
        if self._socket is not None:
            for name in self.jobs:
                body = {"job_name": name, "worker_id": str(self.worker_id)}
                await self._socket.call("join_job_room", body, timeout=JOIN_WAIT_SECONDS)
        self._joined.set()
        self._wake.set()

    def _registered(self) -> None:
        """On the loop, after a (re-)registration: join the job rooms again."""
        if self._socket is not None and self._socket.connected:
            self._spawn_join()

    async def _recover(self, seen: int) -> None:
        """The server does not know this worker (swept): register it again, once."""
        log.warning("worker %s is gone on the server; registering it again", self.worker_id)
        with contextlib.suppress(JobserverSdkError):
            await asyncio.to_thread(self.identity.register, seen)

    # --- claiming ---------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        idle_attempt = 0
        while not self._stopping.is_set():
            # Cleared before looking, so a wake-up landing during the claim is not lost.
            self._wake.clear()
            free = self.concurrency - len(self.running)
            if free <= 0:
                await self._wake.wait()
                continue
            claimed = await self._claim(min(free, MAX_CLAIM))
            for task in claimed:
                self._start(task)
            if claimed:
                idle_attempt = 0
                if len(claimed) == free:
                    continue  # maybe more waiting
            connected = self._socket is not None and self._socket.connected
            wait = (
                IDLE_POLL_SECONDS if connected else backoff(idle_attempt, 0.25, IDLE_POLL_SECONDS)
            )
            idle_attempt = 0 if connected else idle_attempt + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _claim(self, limit: int) -> list[Claimed]:
        """Claim up to `limit` tasks. A claim whose answer is lost is not retried: the
        server's claim lease returns such tasks to the queue."""
        seen = self.identity.generation
        try:
            body = await self.client.request(
                "POST",
                f"{JOBLIB}/tasks/claim-batch",
                json={"worker_id": str(self.worker_id), "limit": limit},
                safe=False,
            )
        except TokenRejected:
            return []  # the worker stops on it (Link.on_token_rejected)
        except ApiError as exc:
            if exc.status == 404:
                await self._recover(seen)
            else:
                log.warning("claim refused: %s", exc)
            return []
        except JobserverSdkError as exc:
            # The link logged the lost connection once; this is every poll during it.
            log.debug("claim failed: %s", exc)
            return []
        return [claimed for task in body["tasks"] if (claimed := self._accept(task))]

    def _accept(self, task: dict[str, Any]) -> Claimed | None:
        cls = self.jobs.get(task["job_name"])
        claimed = Claimed(
            task["id"],
            cls or Job,
            int(task["attempt"]),
            task["payload"],
            int(task.get("max_attempts") or 1),
            task["room_id"],
            task["job_name"],
        )
        if cls is None:  # linked on the server but not in this process: give it back failed
            error = f"job {task['job_name']} not served here"
            self.reporter.send(claimed.report("failed", error=error))
            return None
        return claimed

    def _start(self, claimed: Claimed) -> None:
        self.claims[claimed.id] = claimed
        self.running[claimed.id] = asyncio.create_task(self._run(claimed))

    # --- running ----------------------------------------------------------------------
    async def _run(self, claimed: Claimed) -> None:
        started = time.monotonic()
        outcome: Report | None = None
        ended = "stopped (cancelled or timed out on the server, or released)"
        try:
            if not await self.reporter.send(claimed.report("running")):
                self.claims.pop(claimed.id, None)
                ended = "not started: the server took it back"
                return
            try:
                job = claimed.job.model_validate(claimed.payload)
            except ValidationError as exc:
                outcome = claimed.report("failed", error=f"invalid payload: {exc}")
                self._finish(claimed, outcome)
                return
            outcome = await self._execute_in_context(claimed, job)
            if outcome is not None:
                self._finish(claimed, outcome)
        finally:
            self.running.pop(claimed.id, None)
            self._wake.set()
            if outcome is not None:
                ended = outcome.status + (f": {outcome.error}" if outcome.error else "")
            _log_task(claimed, ended, started)

    def _finish(self, claimed: Claimed, report: Report) -> None:
        """Hand the final report to the reporter (which retries it until the server answers)
        and free the slot at once: the task is no longer this worker's to release."""
        self.claims.pop(claimed.id, None)
        self.reporter.send(report)

    async def _handle(self, job: Job) -> Any:
        if inspect.iscoroutinefunction(job.handle):
            return await job.handle()
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        result = await loop.run_in_executor(self._threads, context.run, job.handle)
        if inspect.isawaitable(result):
            # A plain `def` that hands back a coroutine (a decorated `async def`, say).
            result = await result
        return result

    async def _execute_in_context(self, claimed: Claimed, job: Job) -> Report | None:
        """`_execute` with the task's context bound (`Job.context`); its last progress
        report is sent before the outcome is."""
        info = task_context.TaskInfo(
            uuid.UUID(claimed.id),
            claimed.attempt,
            claimed.max_attempts,
            claimed.room,
            claimed.job_name,
            self.worker_id,
        )
        job._task_context = context = task_context.TaskContext(info, self.client)
        token = task_context.bind(context)
        try:
            return await self._execute(claimed, job)
        finally:
            task_context.unbind(token)
            await context.close()

    async def _execute(self, claimed: Claimed, job: Job) -> Report | None:
        """Run handle(); the report of its outcome, or None when it was stopped (cancelled
        or timed out on the server, or shutdown: reported elsewhere)."""
        timeout = claimed.job.timeout_seconds
        handler = asyncio.create_task(_bounded(self._handle(job), timeout))
        try:
            done, _ = await asyncio.wait({handler}, timeout=WATCH_AFTER_SECONDS)
            if not done:
                watcher = asyncio.create_task(self._watch_until_settled(claimed, handler))
                try:
                    await asyncio.wait({handler})
                finally:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
        finally:
            if not handler.done():  # this runner was cancelled (shutdown): stop handle() too
                handler.cancel()
                await asyncio.gather(handler, return_exceptions=True)
        if handler.cancelled():
            return None
        exc = handler.exception()
        if isinstance(exc, TimeoutError) and timeout is not None:
            return claimed.report("failed", error=f"timed out after {timeout:g} s")
        if exc is not None:
            error, trace = f"{type(exc).__name__}: {exc}", task_context.traceback_of(exc)
            return claimed.report("failed", error=error, traceback=trace)
        return claimed.report("completed", result=_jsonable(handler.result()))

    async def _watch_until_settled(self, claimed: Claimed, handler: asyncio.Task[Any]) -> None:
        """Long-poll the task; when it ends without us (cancelled, or failed by the server's
        timeout sweep), stop handle()."""
        while not handler.done():
            try:
                body = await self.client.request(
                    "GET",
                    f"{JOBLIB}/tasks/{claimed.id}",
                    headers={"Prefer": "wait=30"},
                    http_timeout=45,
                )
            except JobserverSdkError:
                await asyncio.sleep(1)
                continue
            if (
                body["status"] in ("completed", "failed", "cancelled")
                or body["attempt"] != claimed.attempt
            ):
                log.info("task %s is %s on the server; stopping it", claimed.id, body["status"])
                handler.cancel()
                return

    # --- shutdown ---------------------------------------------------------------------
    async def _drain(self) -> None:
        """Give running tasks the grace period, release the rest, flush the reports,
        delete the worker."""
        if self.running:
            log.info(
                "waiting up to %g s for %d running task(s)", self.grace_seconds, len(self.running)
            )
            await asyncio.wait(set(self.running.values()), timeout=self.grace_seconds)
        for runner in self.running.values():
            runner.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
        leftovers = list(self.claims.values())
        self.claims.clear()
        if isinstance(self._fatal, TokenRejected):
            # Every request would be refused too; the server's sweeps take the tasks back.
            await self.reporter.close(1)
            return
        await asyncio.gather(*(self._release(claimed) for claimed in leftovers))
        await self.reporter.close(FLUSH_ON_STOP_SECONDS)
        await asyncio.to_thread(self.identity.retire)

    async def _release(self, claimed: Claimed) -> None:
        """Hand an unfinished task back without spending an attempt. Fenced, so a retry
        after a lost answer is refused (409) rather than applied twice: both mean done."""
        body = {"worker_id": str(self.worker_id), "attempt": claimed.attempt}
        try:
            await self.client.request(
                "POST",
                f"{JOBLIB}/tasks/{claimed.id}/release",
                json=body,
                fenced=True,
                retry_seconds=FLUSH_ON_STOP_SECONDS,
            )
        except ApiError as exc:
            if exc.status != 409:
                log.warning("release of task %s refused: %s", claimed.id, exc)
            return
        except JobserverSdkError as exc:
            log.error("release of task %s lost: %s", claimed.id, exc)
            return
        log.info("released task %s", claimed.id)


def _log_task(claimed: Claimed, outcome: str, started: float) -> None:
    """One line per task run: which job, which task and attempt, how it ended, how long."""
    of = f"/{claimed.max_attempts}" if claimed.max_attempts else ""
    log.info(
        "task %s %s attempt %d%s %s in %.3f s",
        claimed.id,
        claimed.job_name or claimed.job.job_name,
        claimed.attempt,
        of,
        outcome,
        time.monotonic() - started,
    )


async def _bounded(handle: Awaitable[Any], limit: float | None) -> Any:
    async with asyncio.timeout(limit):
        return await handle


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value
