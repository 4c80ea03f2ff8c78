"""The leader's passes: stale workers, expired claim leases, stuck @internal tasks, tasks
running past their job's timeout, counters of jobs given limits, lost @internal
dispatches, waiting tasks never settled, retention; and the scheduler that wakes workers
for tasks that became due.

Every pass is a TaskService call (it commits, then publishes); `run_forever` and
`run_scheduler` are the loops a server runs while it is the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from app.background.leader import Leader
from app.realtime.publisher import Publisher
from app.services.tasks.service import TaskService
from app.settings import Settings

log = logging.getLogger(__name__)

# Retention deletes this many finished tasks per statement, and at most this many
# statements per pass: short transactions, and a pass that ends.
RETENTION_BATCH = 1000
RETENTION_BATCHES_PER_PASS = 50
# Throughput minutes are kept this long (the dashboard's "last day").
THROUGHPUT_KEEP_SECONDS = 24 * 3600 + 3600
# Waiting tasks settled per pass by the repair step (normally none are due).
SETTLE_BATCH = 1000


async def sweep_stale_workers(tasks: TaskService, older_than: timedelta) -> list[str]:
    """Workers without a heartbeat for `older_than` get the DELETE /workers cascade, all in
    one transaction (BACKGROUND.md §1, pass 1). Returns the ids removed."""
    now = await tasks.store.now()
    gone = await tasks.lose_stale_workers(now - older_than)
    if gone:
        log.info("swept %d stale worker(s)", len(gone))
    return gone


async def apply_retention(tasks: TaskService, older_than_seconds: float) -> int:
    """Delete finished tasks older than the horizon, a batch at a time (0 = keep all)."""
    if older_than_seconds <= 0:
        return 0
    deleted = 0
    for _ in range(RETENTION_BATCHES_PER_PASS):
        count = await tasks.store.delete_finished(older_than_seconds, RETENTION_BATCH)
        deleted += count
        if count < RETENTION_BATCH:
            break
    await tasks.store.prune_throughput(THROUGHPUT_KEEP_SECONDS)
    if deleted:
        log.info("retention deleted %d finished task(s)", deleted)
    return deleted


async def count_active_under_limits(tasks: TaskService) -> int:
    """Tasks of a job that were claimed before it had limits join its counters (PostgreSQL;
    SQLite counts at each claim). Until then the job may run over its limit by that many."""
    counted = await tasks.store.count_active_under_limits()
    if counted:
        log.info("counted %d active task(s) under limits set since their claim", counted)
    return counted


async def redispatch_lost(
    settings: Settings, tasks: TaskService, publisher: Publisher
) -> list[str]:
    """@internal tasks not started by their re-send time go to the broker again."""
    dispatcher = publisher.dispatcher
    if dispatcher is None:
        return []
    lost = await tasks.store.take_lost_dispatches(settings.internal_dispatch_grace_seconds)
    if lost:
        log.info("re-sending %d @internal task(s) not started yet", len(lost))
        await dispatcher.dispatch(lost)
    return lost


async def run_pass(settings: Settings, tasks: TaskService, publisher: Publisher) -> None:
    """One sweep; each step commits on its own and publishes its events. A step that fails
    (a row it cannot handle, a broker that does not answer) is logged and costs only
    itself: the later steps still run, and it is tried again next pass."""
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (
            "sweep_stale_workers",
            lambda: sweep_stale_workers(tasks, timedelta(seconds=settings.worker_timeout_seconds)),
        ),
        ("expire_leases", tasks.expire_leases),
        (
            "fail_stuck_internal",
            lambda: tasks.fail_stuck_internal(settings.internal_task_timeout_seconds),
        ),
        ("fail_timed_out", lambda: tasks.fail_timed_out(settings.task_timeout_grace_seconds)),
        ("count_active_under_limits", lambda: count_active_under_limits(tasks)),
        ("redispatch_lost", lambda: redispatch_lost(settings, tasks, publisher)),
        # A crash between a parent's end and the settlement of its children.
        ("settle_waiting", lambda: tasks.settle_waiting(SETTLE_BATCH)),
        ("apply_retention", lambda: apply_retention(tasks, settings.retain_finished_seconds)),
    ]
    for name, step in steps:
        try:
            await step()
        except Exception:
            log.exception("sweeper step %s failed; the pass goes on", name)


async def run_forever(
    settings: Settings,
    tasks: TaskService,
    publisher: Publisher,
    leader: Leader,
    stop: asyncio.Event | None = None,
) -> None:
    """Every interval (the first one interval after start): if leader, one pass. A failing
    pass is logged and the loop goes on. Setting `stop` ends it between passes."""
    stop = stop or asyncio.Event()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweeper_interval_seconds)
        if stop.is_set():
            return
        try:
            if await leader.lead():
                await run_pass(settings, tasks, publisher)
        except Exception:
            log.exception("background pass failed; next try in one interval")


async def run_scheduler(
    settings: Settings, tasks: TaskService, leader: Leader, stop: asyncio.Event
) -> None:
    """Every scheduler interval, on the leader: wake workers of tasks that became due
    (delayed submits, retries after backoff). The sweeper loop keeps the leadership fresh."""
    since: datetime | None = None
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.scheduler_interval_seconds)
        if stop.is_set():
            return
        if not leader.leading:
            since = None  # a new leader starts by waking everything already due
            continue
        try:
            since = await tasks.wake_due(since)
        except Exception:
            log.exception("scheduler pass failed; next try in one interval")
