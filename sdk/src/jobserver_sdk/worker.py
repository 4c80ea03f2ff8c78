"""`Worker`: registers job classes, claims their tasks and runs `handle()` on each.

Wake-ups come over Socket.IO (`task_available`); while the socket is down the worker
polls with backoff. Every report names its attempt and worker (fencing), so a report
from an attempt the server already gave up on is refused instead of applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from jobserver_sdk.client import Client, Socket, backoff
from jobserver_sdk.errors import ApiError, JobserverSdkError
from jobserver_sdk.job import Job

log = logging.getLogger("jobserver_sdk.worker")

JOBLIB = "/v1/joblib"
SHUTDOWN_ERROR = "worker shutting down"
# Reports are retried this long through a server restart before the task is let go.
REPORT_RETRY_SECONDS = 300.0
# With the socket up a lost wake-up costs at most this; without it, polling backs off to it.
IDLE_POLL_SECONDS = 5.0
# A handle() still running after this starts a long-poll on its task to notice a cancel.
WATCH_AFTER_SECONDS = 1.0
LIST_LIMIT = 100


@dataclass
class Claimed:
    """A task this worker holds: enough to run it and to fence its reports."""

    id: str
    job: type[Job]
    attempt: int
    payload: dict[str, Any]


class Worker:
    """Runs the tasks of `jobs` registered in `room`, up to `concurrency` at a time.

    Example:
        >>> worker = Worker(url, token, jobs=[SayHello], room="demo", concurrency=8)
        >>> await worker.run()  # until SIGTERM/SIGINT or worker.stop()

    On stop: no new claims; running tasks get `grace_seconds` to finish, the rest are
    reported failed ("worker shutting down", so retries pick them up), and the worker
    is deleted on the server.
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
    ) -> None:
        if not jobs:
            raise ValueError("a worker needs at least one job class")
        self.client = Client(url, token)
        self.room = room
        self.jobs = {cls.full_name(room): cls for cls in jobs}
        self.concurrency = concurrency
        self.grace_seconds = grace_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.handle_signals = handle_signals
        self.worker_id: uuid.UUID | None = None
        self.running: dict[str, asyncio.Task[None]] = {}
        self.claims: dict[str, Claimed] = {}
        self.ready = asyncio.Event()  # set once the jobs are registered on the server
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._socket: Socket | None = None
        # A claim whose answer was lost may have been granted: look for it once reachable.
        self._claim_uncertain = False

    # --- lifecycle --------------------------------------------------------------------
    def stop(self) -> None:
        """Ask `run()` to shut down gracefully; safe to call from a signal handler."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Register, then claim and run tasks until stopped."""
        loop = asyncio.get_running_loop()
        signals = self._install_signals(loop)
        try:
            await self._register()
            self.ready.set()
            self._socket = self._open_socket()
            heartbeat = asyncio.create_task(self._heartbeat_loop())
            try:
                await self._claim_loop()
            finally:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
                await self._drain()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self._socket is not None:
                await self._socket.close()
            await self.client.aclose()

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

    async def _register(self) -> None:
        """Create the worker and link every job class to it (retried until the server answers)."""
        created = await self.client.request(
            "POST", f"{JOBLIB}/workers", safe=False, retry_seconds=REPORT_RETRY_SECONDS
        )
        self.worker_id = uuid.UUID(created["id"])
        for cls in self.jobs.values():
            body = {**cls.registration(), "worker_id": str(self.worker_id)}
            await self.client.request(
                "PUT",
                f"{JOBLIB}/rooms/{self.room}/jobs",
                json=body,
                retry_seconds=REPORT_RETRY_SECONDS,
            )
        log.info("worker %s serves %s", self.worker_id, ", ".join(self.jobs))

    def _open_socket(self) -> Socket:
        sock = self.client.socket()

        async def on_task_available(_data: Any) -> None:
            self._wake.set()

        async def join() -> None:
            for name in self.jobs:
                await sock.emit(
                    "join_job_room", {"job_name": name, "worker_id": str(self.worker_id)}
                )
            self._wake.set()  # tasks may have arrived while the socket was down

        sock.on("task_available", on_task_available)
        sock.on_connect.append(join)
        sock.start()
        return sock

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.client.request("PATCH", f"{JOBLIB}/workers/{self.worker_id}")
            except ApiError as exc:
                if exc.status == 404:  # swept while unreachable: come back as a new worker
                    log.warning(
                        "worker %s is gone on the server; registering again", self.worker_id
                    )
                    await self._rejoin()
                else:
                    log.warning("heartbeat refused: %s", exc)
            except JobserverSdkError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _rejoin(self) -> None:
        await self._register()
        if self._socket is not None and self._socket.connected:
            for callback in self._socket.on_connect:
                await callback()

    # --- claiming ---------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        idle_attempt = 0
        while not self._stopping.is_set():
            # Cleared before looking, so a wake-up landing during the claim is not lost.
            self._wake.clear()
            if len(self.running) >= self.concurrency:
                await self._wake.wait()
                continue
            claimed = await self._adopt() if self._claim_uncertain else None
            claimed = claimed or await self._claim()
            if claimed is not None:
                idle_attempt = 0
                self.claims[claimed.id] = claimed
                self.running[claimed.id] = asyncio.create_task(self._run(claimed))
                continue
            connected = self._socket is not None and self._socket.connected
            wait = (
                IDLE_POLL_SECONDS if connected else backoff(idle_attempt, 0.25, IDLE_POLL_SECONDS)
            )
            idle_attempt = 0 if connected else idle_attempt + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _claim(self) -> Claimed | None:
        try:
            body = await self.client.request(
                "POST", f"{JOBLIB}/tasks/claim", json={"worker_id": str(self.worker_id)}, safe=False
            )
        except ApiError as exc:
            if exc.status == 404:
                await self._rejoin()
            else:
                log.warning("claim refused: %s", exc)
            return None
        except JobserverSdkError as exc:
            log.warning("claim failed: %s", exc)
            self._claim_uncertain = True
            return None
        return await self._accept(body.get("task"))

    async def _accept(self, task: dict[str, Any] | None) -> Claimed | None:
        if task is None:
            return None
        cls = self.jobs.get(task["job_name"])
        claimed = Claimed(task["id"], cls or Job, int(task.get("attempt", 1)), task["payload"])
        if cls is None:  # linked on the server but not in this process: give it back failed
            await self._report(claimed, "failed", error=f"job {task['job_name']} not served here")
            return None
        return claimed

    async def _adopt(self) -> Claimed | None:
        """A task the server handed to this worker although the claim's answer never
        arrived (the connection broke after the commit). Only tasks submitted in the
        worker's own room can be listed; other rooms' tasks of a @global job stay claimed
        until the worker is deleted or goes stale."""
        for name in self.jobs:
            path = f"{JOBLIB}/rooms/{self.room}/jobs/{name}/tasks?status=claimed&limit={LIST_LIMIT}"
            try:
                page = await self.client.request("GET", path)
            except JobserverSdkError:
                return None  # still unreachable: look again on the next round
            for task in page["items"]:
                if task["worker_id"] == str(self.worker_id) and task["id"] not in self.running:
                    log.info("adopting task %s claimed before the connection broke", task["id"])
                    return await self._accept(task)
        self._claim_uncertain = False
        return None

    # --- running ----------------------------------------------------------------------
    async def _run(self, claimed: Claimed) -> None:
        try:
            if not await self._report(claimed, "running") and not await self._holds(claimed):
                return
            try:
                job = claimed.job.model_validate(claimed.payload)
            except ValidationError as exc:
                await self._report(claimed, "failed", error=f"invalid payload: {exc}")
                return
            await self._execute(claimed, job)
        finally:
            self.running.pop(claimed.id, None)
            self.claims.pop(claimed.id, None)
            self._wake.set()

    async def _holds(self, claimed: Claimed) -> bool:
        """After a refused `running` report: True when a retry of it had in fact already
        applied (the first answer was lost), so the task is ours to run."""
        try:
            task = await self.client.request("GET", f"{JOBLIB}/tasks/{claimed.id}")
        except JobserverSdkError:
            return False
        return bool(
            task["status"] == "running"
            and task["worker_id"] == str(self.worker_id)
            and task["attempt"] == claimed.attempt
        )

    async def _execute(self, claimed: Claimed, job: Job) -> None:
        timeout = claimed.job.timeout_seconds
        handler = asyncio.create_task(_bounded(job.handle(), timeout))
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
            return  # cancelled or timed out on the server, or shutdown: reported elsewhere
        exc = handler.exception()
        if isinstance(exc, TimeoutError) and timeout is not None:
            await self._report(claimed, "failed", error=f"timed out after {timeout:g} s")
        elif exc is not None:
            await self._report(claimed, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            await self._report(claimed, "completed", result=_jsonable(handler.result()))

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

    async def _report(
        self, claimed: Claimed, status: str, *, error: str | None = None, result: Any = None
    ) -> bool:
        """PATCH the task's status, retried through outages; False when the server refused
        it (the task was cancelled, or the attempt is no longer ours)."""
        body: dict[str, Any] = {
            "status": status,
            "attempt": claimed.attempt,
            "worker_id": str(self.worker_id),
        }
        if error is not None:
            body["error"] = error
        if result is not None:
            body["result"] = result
        try:
            await self.client.request(
                "PATCH",
                f"{JOBLIB}/tasks/{claimed.id}",
                json=body,
                retry_seconds=REPORT_RETRY_SECONDS,
            )
        except ApiError as exc:
            log.info("report %s on task %s refused: %s", status, claimed.id, exc.detail)
            if exc.status == 413 and status == "completed":
                return await self._report(claimed, "failed", error=f"result refused: {exc.detail}")
            return False
        except JobserverSdkError as exc:
            log.error("report %s on task %s lost: %s", status, claimed.id, exc)
            return False
        return True

    # --- shutdown ---------------------------------------------------------------------
    async def _drain(self) -> None:
        """Give running tasks the grace period, fail the rest, delete the worker."""
        if self.running:
            log.info(
                "waiting up to %g s for %d running task(s)", self.grace_seconds, len(self.running)
            )
            await asyncio.wait(set(self.running.values()), timeout=self.grace_seconds)
        leftovers = {task_id: self.claims[task_id] for task_id in self.running}
        for runner in self.running.values():
            runner.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
        for claimed in leftovers.values():
            await self._report(claimed, "failed", error=SHUTDOWN_ERROR)
        if self.worker_id is not None:
            with contextlib.suppress(JobserverSdkError):
                await self.client.request("DELETE", f"{JOBLIB}/workers/{self.worker_id}")


async def _bounded(handle: Any, limit: float | None) -> Any:
    async with asyncio.timeout(limit):
        return await handle


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value
