"""Which replica runs the background loops: the holder of a PostgreSQL advisory lock.

The lock is session-level on a connection of its own, so it lives exactly as long as that
server session: a replica that dies (even kill -9) drops it, and the next replica to try
gets it. Two things keep that true when a replica dies silently (its host vanishes, or a
proxy or NAT in between keeps the TCP connection looking alive):

* The server ends a session that stays idle for `idle_timeout` (`idle_session_timeout`,
  PostgreSQL 14+; TCP keepalives and `tcp_user_timeout` cover a vanished host on older
  servers). The leader re-checks its lock every `check_every`, three times per idle
  timeout, so a live leader is never idle that long and a vanished one always is.
* The leader holds a lease it renews with each check: leadership counts only until
  `started + check_every + check_timeout` of its last good check. A check that fails, or
  does not answer before the lease ends, drops the connection. The server cannot free the
  lock before `idle_timeout` after that check, so an old leader has stopped before a new
  one can start, however the network fails.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from app.db.asyncpg_args import asyncpg_connect_args

log = logging.getLogger(__name__)

# Any constant works; advisory locks are scoped to the database, so one key per deployment.
LOCK_KEY = 0x6A6F6273  # "jobs"
APPLICATION_NAME = "jobserver-leader"
KEEPALIVE_PROBES = 3
IDLE_SESSION_TIMEOUT_SINCE = 14
# URL options SQLAlchemy's asyncpg adapter consumes itself; asyncpg.connect() refuses them.
TCP_USER_TIMEOUT_SINCE = 12

# A bigint advisory lock shows in pg_locks as (classid, objid) = (high, low) 32 bits.
HOLDS_LOCK = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
      AND classid = $1 AND objid = $2 AND objsubid = 1
)
"""


@dataclass(frozen=True)
class LeaderTiming:
    """How often the lock is checked and how soon a silent leader's lock is freed, all
    derived from the sweeper interval so that a standby sweeps within two intervals."""

    check_every: float  # the leader's lock check (it also keeps the session busy)
    check_timeout: float  # a check slower than this is a lost leadership
    try_every: float  # a standby's attempt to take the lock
    idle_timeout: float  # the server ends a session idle this long

    @classmethod
    def for_sweeper_interval(cls, interval: float) -> LeaderTiming:
        # Take-over after a silent death: the session ends idle_timeout after the leader's
        # last statement, a standby takes the lock within try_every: 3/4 of an interval.
        idle = interval / 2
        return cls(
            check_every=idle / 3, check_timeout=idle / 3, try_every=interval / 4, idle_timeout=idle
        )

    @property
    def lease(self) -> float:
        """How long one good check keeps this replica leader (from the check's start)."""
        return self.check_every + self.check_timeout


class Leader(Protocol):
    """What the background loops see of leadership."""

    async def lead(self) -> bool:
        """True while this process should run the loops."""
        ...

    async def release(self) -> None: ...

    @property
    def leading(self) -> bool:
        """What the last `lead()` found, without asking the database again."""
        ...


class LeaderLock(Leader, Protocol):
    """The lock itself, held by the loop runner: `lead()` checks or takes it (bounded)."""

    timing: LeaderTiming

    async def wait_lost(self, seconds: float) -> None:
        """Return after `seconds`, or as soon as the lock's connection dies."""
        ...


class SoleLeader:
    """SQLite: the server is the only process on its database."""

    def __init__(self, timing: LeaderTiming) -> None:
        self.timing = timing

    @property
    def leading(self) -> bool:
        return True

    async def lead(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    async def wait_lost(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AdvisoryLockLeader:
    def __init__(self, database_url: str, timing: LeaderTiming) -> None:
        self.timing = timing
        self._connect_args = asyncpg_connect_args(database_url)
        self._connection: Any = None  # asyncpg.Connection (untyped)
        self._holds = False  # this connection took the lock
        self._lease_end = 0.0  # time.monotonic()
        self._lost = asyncio.Event()
        self._busy = asyncio.Lock()  # one statement at a time on the connection
        self._failing = False  # logs a failure once, not at every try

    @property
    def leading(self) -> bool:
        return self._connection is not None and time.monotonic() < self._lease_end

    async def lead(self) -> bool:
        async with self._busy:
            started = time.monotonic()
            deadline = started + self.timing.check_timeout
            if self.leading:
                deadline = min(deadline, self._lease_end)
            try:
                async with asyncio.timeout(max(deadline - started, 0)):
                    held = await self._check_or_take()
            except Exception as exc:  # a check that fails or hangs: the lock is lost
                if self.leading or not self._failing:
                    log.warning("leader lock check failed (%s)", describe(exc))
                self._failing = True
                self._drop()
                return False
            if self._failing:
                log.info("leader lock reachable again")
                self._failing = False
            if held and not self._holds:
                log.info("this replica now runs the background loops (pid %s)", os.getpid())
            if held:
                self._holds = True
                self._lease_end = started + self.timing.lease
            elif self._holds:
                log.warning("leader lock no longer held; dropping it")
                self._drop()
            return held

    async def wait_lost(self, seconds: float) -> None:
        if not self.leading:  # nothing to lose
            await asyncio.sleep(seconds)
            return
        try:
            async with asyncio.timeout(seconds):
                await self._lost.wait()
        except TimeoutError:
            return

    async def release(self) -> None:
        async with self._busy:
            connection, self._connection = self._connection, None
            self._holds, self._lease_end = False, 0.0
            if connection is not None:
                try:  # a polite close frees the lock at once; a hung one is cut off
                    await connection.close(timeout=self.timing.check_timeout)
                except Exception:
                    connection.terminate()

    async def _check_or_take(self) -> bool:
        if self._connection is None:
            self._connection = await self._connect()
        if self._holds:  # re-taking would stack a second hold on the session
            high, low = divmod(LOCK_KEY, 1 << 32)
            return bool(await self._connection.fetchval(HOLDS_LOCK, high, low))
        return bool(await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY))

    async def _connect(self) -> Any:
        timing = self.timing
        connection = await asyncpg.connect(
            **self._connect_args,
            server_settings={
                "application_name": f"{APPLICATION_NAME}:{os.getpid()}",
                "statement_timeout": str(milliseconds(timing.check_timeout)),
                "idle_in_transaction_session_timeout": str(milliseconds(timing.idle_timeout)),
                # The server's end of this connection probes a silent client: without a
                # proxy in between, a vanished host is noticed even on PostgreSQL < 14.
                "tcp_keepalives_idle": str(math.ceil(timing.idle_timeout / 2)),
                "tcp_keepalives_interval": str(math.ceil(timing.idle_timeout / 6)),
                "tcp_keepalives_count": str(KEEPALIVE_PROBES),
            },
        )
        try:
            version = connection.get_server_version().major
            if version >= TCP_USER_TIMEOUT_SINCE:
                await connection.execute(
                    f"SET tcp_user_timeout = {milliseconds(timing.idle_timeout)}"
                )
            if version >= IDLE_SESSION_TIMEOUT_SINCE:
                await connection.execute(
                    f"SET idle_session_timeout = {milliseconds(timing.idle_timeout)}"
                )
        except BaseException:
            connection.terminate()
            raise
        self._lost.clear()
        connection.add_termination_listener(self._on_termination)
        return connection

    def _on_termination(self, connection: Any) -> None:
        if connection is self._connection:
            log.warning("leader lock connection closed; this replica stops leading")
            self._drop()

    def _drop(self) -> None:
        """Forget the connection without waiting on it: it may be the thing that hangs."""
        connection, self._connection = self._connection, None
        self._holds, self._lease_end = False, 0.0
        self._lost.set()
        if connection is not None:
            connection.terminate()


def milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def for_database(database_url: str, sweeper_interval: float) -> LeaderLock:
    timing = LeaderTiming.for_sweeper_interval(sweeper_interval)
    if database_url.startswith("sqlite"):
        return SoleLeader(timing)
    return AdvisoryLockLeader(database_url, timing)
