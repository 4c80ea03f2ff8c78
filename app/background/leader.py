"""Which replica runs the background loops: the holder of a PostgreSQL advisory lock.

The lock is session-level on a connection of its own, so it lives exactly as long as that
connection: a replica that dies (even kill -9) drops it, and the next replica to try gets it.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Any constant works; advisory locks are scoped to the database, so one key per deployment.
LOCK_KEY = 0x6A6F6273  # "jobs"
APPLICATION_NAME = "jobserver-leader"


class Leader(Protocol):
    async def lead(self) -> bool:
        """True while this process should run the loops; tries to become leader if not."""
        ...

    async def release(self) -> None: ...

    @property
    def leading(self) -> bool:
        """What the last `lead()` found, without asking the database again."""
        ...


class SoleLeader:
    """SQLite: the server is the only process on its database."""

    @property
    def leading(self) -> bool:
        return True

    async def lead(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class AdvisoryLockLeader:
    def __init__(self, database_url: str) -> None:
        # Its own engine: the lock must not travel back into the shared pool.
        self._engine: AsyncEngine = create_async_engine(
            database_url,
            poolclass=NullPool,
            connect_args={
                "server_settings": {"application_name": f"{APPLICATION_NAME}:{os.getpid()}"}
            },
        )
        self._connection: AsyncConnection | None = None
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    async def lead(self) -> bool:
        try:
            if self._connection is None:
                connection = await self._engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if self._leading:
                # Still ours as long as the connection is alive; re-locking would stack.
                await self._connection.execute(text("SELECT 1"))
                return True
            got = await self._connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
            )
            if got:
                self._leading = True
                log.info("this replica now runs the background loops (pid %s)", os.getpid())
            return self._leading
        except Exception:
            log.warning("leader connection lost; will retry", exc_info=True)
            await self._drop()
            return False

    async def _drop(self) -> None:
        connection, self._connection, self._leading = self._connection, None, False
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                log.debug("closing a broken leader connection failed", exc_info=True)

    async def release(self) -> None:
        await self._drop()
        await self._engine.dispose()


def for_database(database_url: str) -> Leader:
    if database_url.startswith("sqlite"):
        return SoleLeader()
    return AdvisoryLockLeader(database_url)
