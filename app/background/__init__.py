"""Background loops of the server (sweeper, scheduler, schedules) and who runs them: the
runner keeps the leader lock and runs the loops exactly while it holds it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background import leader as leaders
from app.background.leader import LeaderLock
from app.background.schedules import run_schedules
from app.background.sweeper import run_forever, run_pass, run_scheduler
from app.realtime.publisher import Publisher
from app.services.tasks.service import TaskService
from app.settings import Settings

log = logging.getLogger(__name__)

# Shutdown lets a running pass finish its transaction for this long, then cancels it, so
# that the lock is released within the server's shutdown budget (app/lifecycle.py).
STOP_TIMEOUT = 1.5
# Leadership lost: a pass in flight is cancelled; this long is allowed for its rollback.
CANCEL_TIMEOUT = 1.0


class Granted:
    """What the loops see of leadership: the lock's lease, read without asking the
    database (only the runner talks to the lock's connection)."""

    def __init__(self, lock: LeaderLock) -> None:
        self._lock = lock

    @property
    def leading(self) -> bool:
        return self._lock.leading

    async def lead(self) -> bool:
        return self._lock.leading

    async def release(self) -> None:
        return None


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    tasks: TaskService,
    publisher: Publisher,
    lock: LeaderLock | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> AsyncIterator[None]:
    """The loops run while the context is open and this process holds the leader lock.
    `lock` defaults to the one for the settings' database; schedules fire only when
    `sessions` (the ORM's) is given."""
    if lock is None:
        lock = leaders.for_database(
            settings.effective_leader_database_url, settings.sweeper_interval_seconds
        )
    runner = Runner(settings, tasks, publisher, lock, sessions)
    keeper = asyncio.create_task(runner.keep(), name="leader")
    try:
        yield
    finally:
        runner.stop.set()
        await keeper
        await lock.release()


class Runner:
    """Holds the lock and starts or cancels the loops as leadership comes and goes."""

    def __init__(
        self,
        settings: Settings,
        tasks: TaskService,
        publisher: Publisher,
        lock: LeaderLock,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.tasks = tasks
        self.publisher = publisher
        self.lock = lock
        self.stop = asyncio.Event()
        self._started = asyncio.get_running_loop().time()
        self._loops: asyncio.Task[None] | None = None

    async def keep(self) -> None:
        timing = self.lock.timing
        try:
            while not self.stop.is_set():
                leading = await self.lock.lead()
                self._forget_crashed_loops()
                if leading and self._loops is None:
                    self._loops = asyncio.create_task(self._run_loops(), name="background")
                elif not leading and self._loops is not None:
                    await self._cancel_loops()
                pause = timing.check_every if leading else timing.try_every
                await self._wait(pause)
        finally:
            await self._stop_loops()

    def _forget_crashed_loops(self) -> None:
        """The loops catch their passes' errors; should one escape anyway, log it, and the
        next check starts them again."""
        loops = self._loops
        if loops is None or not loops.done():
            return
        self._loops = None
        if not loops.cancelled() and loops.exception() is not None:
            log.error("background loops crashed", exc_info=loops.exception())

    async def _wait(self, seconds: float) -> None:
        """`seconds`, cut short by a stop or by the lock's connection dying."""
        waits = [
            asyncio.create_task(self.stop.wait()),
            asyncio.create_task(self.lock.wait_lost(seconds)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _run_loops(self) -> None:
        granted = Granted(self.lock)
        settings, tasks, publisher = self.settings, self.tasks, self.publisher
        # A replica taking over from a lost leader sweeps at once. A process that has just
        # started waits one interval, as the loop does: after a restart of the whole
        # deployment, workers need that long to heartbeat again before they count as stale.
        age = asyncio.get_running_loop().time() - self._started
        if age >= settings.sweeper_interval_seconds:
            try:
                await run_pass(settings, tasks, publisher)
            except Exception:
                log.exception("background pass failed; next try in one interval")
        loops: list[Awaitable[None]] = [
            run_forever(settings, tasks, publisher, granted, self.stop),
            run_scheduler(settings, tasks, granted, self.stop),
        ]
        if self.sessions is not None:
            loops.append(run_schedules(settings, self.sessions, tasks, granted, self.stop))
        await asyncio.gather(*loops)

    async def _cancel_loops(self) -> None:
        """Leadership is lost: nothing more may run on the stale lock, not even the end of
        the pass in flight (its transaction rolls back)."""
        loops, self._loops = self._loops, None
        if loops is None:
            return
        log.warning("leadership lost: cancelling the background loops")
        loops.cancel()
        done, _ = await asyncio.wait({loops}, timeout=CANCEL_TIMEOUT)
        if not done:
            log.error("background loops did not stop within %ss of cancel", CANCEL_TIMEOUT)

    async def _stop_loops(self) -> None:
        """Shutdown: the loops end between passes; one still running after STOP_TIMEOUT is
        cancelled."""
        loops, self._loops = self._loops, None
        if loops is None:
            return
        done, _ = await asyncio.wait({loops}, timeout=STOP_TIMEOUT)
        if not done:
            log.warning("background pass did not finish in %ss; cancelling it", STOP_TIMEOUT)
            loops.cancel()
            await asyncio.wait({loops}, timeout=CANCEL_TIMEOUT)
