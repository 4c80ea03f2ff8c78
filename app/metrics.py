"""Prometheus metrics: counters and histograms fed by published events and HTTP requests,
and the gauges read from the database at scrape time (cached for a second).

With PROMETHEUS_MULTIPROC_DIR set (`jobserver serve --workers N` sets it) every process
writes its samples there and a scrape aggregates them all."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import TaskCount, Worker
from app.db.types import utcnow_plus
from app.services.events import Event, TaskChanged

CONTENT_TYPE = CONTENT_TYPE_LATEST
SCRAPE_CACHE_SECONDS = 1.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

TASKS_SUBMITTED = Counter("jobserver_tasks_submitted", "Tasks accepted (first attempt)", ["job"])
TASKS_CLAIMED = Counter("jobserver_tasks_claimed", "Tasks handed to a worker", ["job"])
TASKS_COMPLETED = Counter("jobserver_tasks_completed", "Tasks completed", ["job"])
TASKS_FAILED = Counter("jobserver_tasks_failed", "Tasks failed for good", ["job"])
TASKS_RETRIED = Counter("jobserver_tasks_retried", "Tasks queued again for a new attempt", ["job"])
TASKS_CANCELLED = Counter("jobserver_tasks_cancelled", "Tasks cancelled", ["job"])
CLAIM_TO_START = Histogram(
    "jobserver_task_claim_to_start_seconds",
    "From claim to the worker reporting running",
    ["job"],
    buckets=LATENCY_BUCKETS,
)
END_TO_END = Histogram(
    "jobserver_task_end_to_end_seconds",
    "From submission to a terminal status",
    ["job", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_DURATION = Histogram(
    "jobserver_http_request_duration_seconds",
    "HTTP request duration by route template",
    ["method", "route", "status"],
)


@functools.lru_cache(maxsize=16_384)
def _child(metric: Any, *labels: str) -> Any:
    """A metric's labelled child, looked up once per label set: `labels()` takes the
    metric's lock and validates on every call; the hot path then only increments."""
    return metric.labels(*labels)


def http_duration(method: str, route: str, status: int) -> Any:
    """The labelled child of HTTP_DURATION for one request."""
    return _child(HTTP_DURATION, method, route, str(status))


# Rooms are many (ZnDraw opens one per session) and any operator names jobs, so a label
# per full job name would grow without end. The `job` label is the job without its room
# (`modifiers:Echo`; @global and @internal jobs, few and registered by admins, keep
# theirs), and a process keeps at most MAX_JOB_LABELS of them: later ones count as OTHER_JOB.
MAX_JOB_LABELS = 200
OTHER_JOB = "other"


class JobLabels:
    def __init__(self, cap: int = MAX_JOB_LABELS) -> None:
        self.cap = cap
        self.known: set[str] = set()

    def __call__(self, full_name: str) -> str:
        room, _, rest = full_name.partition(":")
        label = full_name if room.startswith("@") or not rest else rest
        if label in self.known:
            return label
        if len(self.known) >= self.cap:
            return OTHER_JOB
        self.known.add(label)
        return label


JOB_LABELS = JobLabels()


SOCKETIO_CONNECTIONS = Gauge(
    "jobserver_socketio_connections",
    "Open Socket.IO connections",
    multiprocess_mode="livesum",
)

_BY_STATUS = {
    "claimed": TASKS_CLAIMED,
    "completed": TASKS_COMPLETED,
    "failed": TASKS_FAILED,
    "cancelled": TASKS_CANCELLED,
}
_TERMINAL = frozenset({"completed", "failed", "cancelled"})


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def observe(events: Iterable[Event]) -> None:
    """Count each task transition once (the publisher has already de-duplicated)."""
    for event in events:
        if not isinstance(event, TaskChanged):
            continue
        job = JOB_LABELS(event.job_name)
        if event.status == "pending":
            _child(TASKS_RETRIED if event.attempt > 1 else TASKS_SUBMITTED, job).inc()
        elif event.status in _BY_STATUS:
            _child(_BY_STATUS[event.status], job).inc()
        if event.status == "running":
            waited = _seconds(event.claimed_at, event.started_at)
            if waited is not None:
                _child(CLAIM_TO_START, job).observe(waited)
        if event.status in _TERMINAL:
            took = _seconds(event.created_at, event.completed_at)
            if took is not None:
                _child(END_TO_END, job, event.status).observe(took)


@dataclass
class QueueSnapshot:
    depth: list[tuple[str, str, int]] = field(default_factory=list)
    live_workers: int = 0
    taken_at: float = float("-inf")


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: QueueSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "jobserver_queue_depth", "Tasks by job and status", labels=["job", "status"]
        )
        for job, status, count in self.snapshot.depth:
            depth.add_metric([job, status], count)
        yield depth
        yield GaugeMetricFamily(
            "jobserver_workers_live",
            "Workers whose heartbeat is within the timeout",
            value=self.snapshot.live_workers,
        )


class ScrapeCache:
    """The database part of a scrape, at most once a second however many scrapers."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], worker_timeout_seconds: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self.worker_timeout_seconds = worker_timeout_seconds
        self.snapshot = QueueSnapshot()
        self._lock = asyncio.Lock()

    async def current(self) -> QueueSnapshot:
        async with self._lock:
            if time.monotonic() - self.snapshot.taken_at >= SCRAPE_CACHE_SECONDS:
                self.snapshot = await self._read()
        return self.snapshot

    async def _read(self) -> QueueSnapshot:
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(TaskCount.job_name, TaskCount.status, func.sum(TaskCount.n))
                .group_by(TaskCount.job_name, TaskCount.status)
                .having(func.sum(TaskCount.n) != 0)
            )
            live = await session.scalar(
                select(func.count())
                .select_from(Worker)
                .where(Worker.last_heartbeat >= utcnow_plus(-self.worker_timeout_seconds))
            )
        folded: dict[tuple[str, str], int] = {}
        for job, status, count in rows.all():
            key = (JOB_LABELS(job), status)
            folded[key] = folded.get(key, 0) + int(count)
        depth = [(job, status, count) for (job, status), count in folded.items()]
        return QueueSnapshot(depth, int(live or 0), time.monotonic())


def exposition(snapshot: QueueSnapshot) -> bytes:
    """This process's (or, in multiprocess mode, every process's) samples plus the snapshot."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(_SnapshotCollector(snapshot))
    return own + generate_latest(database)
