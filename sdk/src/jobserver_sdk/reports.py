"""Status reports of a worker's tasks, sent in batches through `PATCH /v1/joblib/tasks`.

Every report is fenced (it names the task's attempt and the worker), so the server applies
it at most once and answers a repeat of an applied report with success. That makes any
report safe to send again: a batch is retried on every 5xx and connection error until
each item is applied or refused (409: the server moved on, e.g. the task was re-queued,
released, cancelled or timed out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from jobserver_sdk.client import Client, backoff
from jobserver_sdk.errors import ApiError, JobserverSdkError

log = logging.getLogger("jobserver_sdk.worker")

PATH = "/v1/joblib/tasks"
MAX_ITEMS = 100  # the server takes up to 500; 100 keeps one answer small
LINGER_SECONDS = 0.002  # a report waits at most this long for others to share its request
MAX_IN_FLIGHT = 4
# The results of one batch stay under this many bytes (larger ones travel alone).
BATCH_RESULT_BYTES = 1 << 20
RETRY_BACKOFF_MAX = 5.0
PAYLOAD_TOO_LARGE = 413
SERVER_ERROR = 500


@dataclass
class Report:
    """One fenced status report."""

    task_id: str
    attempt: int
    status: str
    error: str | None = None
    result: Any = None
    size: int = 0  # rough bytes of `result`, to keep batches small
    traceback: str | None = None  # a failure's, kept in the task's attempt history

    def item(self, worker_id: uuid.UUID) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.task_id,
            "status": self.status,
            "attempt": self.attempt,
            "worker_id": str(worker_id),
        }
        if self.error is not None:
            body["error"] = self.error
        if self.result is not None:
            body["result"] = self.result
        if self.traceback is not None:
            body["traceback"] = self.traceback
        return body


@dataclass
class _Entry:
    report: Report
    outcome: asyncio.Future[bool] = field(repr=False)

    def settle(self, applied: bool) -> None:
        if not self.outcome.done():  # its waiter may have been cancelled (shutdown)
            self.outcome.set_result(applied)


class Reporter:
    """Queues reports and sends them in batches: while another batch is on the wire, a
    batch leaves when it holds `MAX_ITEMS` reports or its first report has waited
    `LINGER_SECONDS`, with up to `MAX_IN_FLIGHT` batches on the wire; with none on the
    wire, at once.

    Example:
        >>> reporter = Reporter(client, worker_id)
        >>> reporter.start()
        >>> applied = await reporter.send(Report(task_id, 1, "running"))
        >>> await reporter.close(timeout=60)
    """

    def __init__(self, client: Client, worker_id: uuid.UUID) -> None:
        self.client = client
        self.worker_id = worker_id
        self._queue: deque[_Entry] = deque()
        self._queued = asyncio.Event()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._unsettled: set[asyncio.Future[bool]] = set()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sending (in a task of the running loop)."""
        self._runner = asyncio.create_task(self._run())

    def send(self, report: Report) -> asyncio.Future[bool]:
        """Queue a report; the future says whether the server applied it (False: refused).
        Awaiting it is optional: the report is delivered either way."""
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._unsettled.add(outcome)
        outcome.add_done_callback(self._unsettled.discard)
        self._queue.append(_Entry(report, outcome))
        self._queued.set()
        if len(self._queue) >= MAX_ITEMS:
            self._full.set()
        return outcome

    async def _run(self) -> None:
        while True:
            await self._queued.wait()
            # Idle, a report leaves at once (a `running` report holds up its handler);
            # while batches are on the wire, the next one gathers for a few ms.
            if self._deliveries and len(self._queue) < MAX_ITEMS:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LINGER_SECONDS):
                        await self._full.wait()
            await self._slots.acquire()
            batch = self._take()
            delivery = asyncio.create_task(self._deliver_in_slot(batch))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    def _take(self) -> list[_Entry]:
        batch: list[_Entry] = []
        size = 0
        while self._queue and len(batch) < MAX_ITEMS:
            size += self._queue[0].report.size
            if batch and size > BATCH_RESULT_BYTES:
                break
            batch.append(self._queue.popleft())
        if len(self._queue) < MAX_ITEMS:
            self._full.clear()
        if not self._queue:
            self._queued.clear()
        return batch

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline API
        """Wait (at most `timeout` s) until every queued report is applied or refused,
        then stop sending. Reports still open then are lost, and logged."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._unsettled:
                    await asyncio.wait(set(self._unsettled))
        for outcome in list(self._unsettled):
            log.error("gave up a status report after %g s of retries", timeout)
            outcome.cancel()
        tasks = [*self._deliveries, *([self._runner] if self._runner else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- delivery ---------------------------------------------------------------------
    async def _deliver_in_slot(self, batch: list[_Entry]) -> None:
        try:
            await self._deliver(batch)
        finally:
            self._slots.release()

    async def _deliver(self, batch: list[_Entry]) -> None:
        """Send until every entry is settled; the unanswered ones go again after a backoff."""
        tries = 0
        while batch:
            if tries:
                await asyncio.sleep(backoff(tries - 1, cap=RETRY_BACKOFF_MAX))
            tries += 1
            items = [entry.report.item(self.worker_id) for entry in batch]
            try:
                body = await self.client.request(
                    "PATCH", PATH, json={"items": items}, retry_seconds=0
                )
            except ApiError as exc:
                batch = self._on_refused_batch(batch, exc)
                continue
            except JobserverSdkError as exc:
                # The link logged the lost connection once; this is every retry during it.
                log.debug("status reports not delivered (%s); retrying", exc)
                continue
            outcomes = body.get("items") if isinstance(body, dict) else None
            if not isinstance(outcomes, list) or len(outcomes) != len(batch):
                log.error("status reports: unexpected answer %.200r; dropped", body)
                outcomes = [{"applied": False}] * len(batch)
            batch = [e for e, o in zip(batch, outcomes, strict=True) if not self._settle(e, o)]

    def _on_refused_batch(self, batch: list[_Entry], exc: ApiError) -> list[_Entry]:
        """The whole request failed: what to send again now (others may go on their own)."""
        if exc.status >= SERVER_ERROR:
            log.warning("status reports answered %s; retrying", exc)
            if exc.status == SERVER_ERROR and len(batch) > 1:
                # A report the server chokes on must not hold the others back: halve.
                half = len(batch) // 2
                self._spawn(batch[half:])
                return batch[:half]
            return batch
        if exc.status == PAYLOAD_TOO_LARGE and len(batch) > 1:
            for entry in batch[1:]:
                self._spawn([entry])
            return batch[:1]
        problem = {"status": exc.status, "type": exc.type, "detail": exc.detail}
        for entry in batch:
            self._settle(entry, {"applied": False, "problem": problem})
        return []

    def _spawn(self, batch: list[_Entry]) -> None:
        delivery = asyncio.create_task(self._deliver(batch))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)

    def _settle(self, entry: _Entry, outcome: dict[str, Any]) -> bool:
        """Apply one item's outcome; False when it should be sent again (a 5xx of its own)."""
        if outcome.get("applied"):
            entry.settle(True)
            return True
        problem = outcome.get("problem") or {}
        status = int(problem.get("status", 0))
        report = entry.report
        if status >= SERVER_ERROR:
            return False
        if status != 401:  # a refused token stops the worker, which says so once
            log.info("report %s on task %s refused: %s", report.status, report.task_id, problem)
        if status == PAYLOAD_TOO_LARGE and report.status == "completed":
            error = f"result refused: {problem.get('detail', '')}"
            self.send(Report(report.task_id, report.attempt, "failed", error=error))
        entry.settle(False)
        return True
