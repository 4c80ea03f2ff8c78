"""Concurrency limits hold at every moment while 20 workers claim in parallel: a monitor
polls the committed count of claimed and running tasks throughout, the workers keep an
in-process count of the tasks they hold, and neither may pass the limit."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

from app.services.actors import Actor
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import Report
from app.state import Core
from tests.flow.limits import active_by_key, counters, set_limits, setup, submit_keys

CLAIMERS = 20
KEYS = ["k0", "k1", "k2", "k3"]
# Generous: the machine running the tests is shared.
DEADLINE_SECONDS = 120


@dataclass
class Peaks:
    """The most tasks seen active at once, in total and per key."""

    total: int = 0
    per_key: Counter[str | None] = field(default_factory=Counter)

    def see(self, active: Counter[str | None]) -> None:
        self.total = max(self.total, active.total())
        for key, count in active.items():
            self.per_key[key] = max(self.per_key[key], count)


@dataclass
class Run:
    core: Core
    actor: Actor
    job_id: uuid.UUID
    total: int
    held: Counter[str | None] = field(default_factory=Counter)
    in_process: Peaks = field(default_factory=Peaks)
    in_database: Peaks = field(default_factory=Peaks)
    done: set[str] = field(default_factory=set)

    async def work(self, worker_id: uuid.UUID) -> None:
        """Claim one task at a time, hold it a short random time, complete it."""
        tasks = self.core.tasks
        while len(self.done) < self.total:
            views = await tasks.claim(self.actor, worker_id, 1)
            if not views:
                await asyncio.sleep(0.005)
                continue
            task = views[0].task
            self.held[task.concurrency_key] += 1
            self.in_process.see(self.held)
            await tasks.report(self.actor, Report(task.id, TaskStatus.RUNNING))
            await asyncio.sleep(random.uniform(0.001, 0.02))
            # Let go before the report: the database frees the slot when it commits, and
            # a claim may take it before this coroutine runs again.
            self.held[task.concurrency_key] -= 1
            await tasks.report(self.actor, Report(task.id, TaskStatus.COMPLETED))
            self.done.add(task.id)

    async def monitor(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.in_database.see(await active_by_key(self.core, self.job_id))
            await asyncio.sleep(0.002)

    async def __call__(self, workers: list[uuid.UUID]) -> None:
        stop = asyncio.Event()
        monitor = asyncio.create_task(self.monitor(stop))
        try:
            claims = asyncio.gather(*(self.work(w) for w in workers))
            await asyncio.wait_for(claims, DEADLINE_SECONDS)
        finally:
            stop.set()
            await monitor


async def _run(core: Core, keys: list[str | None], **limits: int) -> Run:
    actor, workers, job_id, job_name = await setup(core, CLAIMERS)
    await set_limits(core, job_id, **limits)
    await submit_keys(core, actor, job_name, keys)
    run = Run(core, actor, job_id, len(keys))
    await run(workers)
    return run


async def _counters_are_back_to_zero(core: Core, job_id: uuid.UUID) -> None:
    if core.settings.database_url.startswith("postgresql"):
        assert await counters(core, job_id) == (0, {})


async def test_max_running_is_never_exceeded_by_twenty_concurrent_claimers(core: Core) -> None:
    limit = 3
    run = await _run(core, [None] * 60, max_running=limit)
    assert run.in_database.total <= limit
    assert run.in_process.total <= limit
    assert len(run.done) == 60
    await _counters_are_back_to_zero(core, run.job_id)


async def test_max_running_per_key_is_never_exceeded_by_twenty_concurrent_claimers(
    core: Core,
) -> None:
    per_key = 2
    keys: list[str | None] = [KEYS[i % len(KEYS)] for i in range(48)] + [None] * 8
    run = await _run(core, keys, max_running_per_key=per_key)
    for key in KEYS:
        assert run.in_database.per_key[key] <= per_key
        assert run.in_process.per_key[key] <= per_key
    assert len(run.done) == len(keys)
    await _counters_are_back_to_zero(core, run.job_id)


async def test_both_limits_hold_together_under_twenty_concurrent_claimers(core: Core) -> None:
    keys: list[str | None] = [KEYS[i % len(KEYS)] for i in range(40)] + [None] * 8
    run = await _run(core, keys, max_running=3, max_running_per_key=1)
    assert run.in_database.total <= 3
    assert run.in_process.total <= 3
    for key in KEYS:
        assert run.in_database.per_key[key] <= 1
        assert run.in_process.per_key[key] <= 1
    assert len(run.done) == len(keys)
    await _counters_are_back_to_zero(core, run.job_id)
