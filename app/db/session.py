"""Engine and session factory for both dialects."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db.types import (
    SQLITE_NOW_FUNCTION,
    SQLITE_NOW_PLUS_FUNCTION,
    sqlite_now_plus_text,
    sqlite_now_text,
)

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The files next to a database that SQLite creates with the database file's own mode.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# Settings.db_orm_pool_size / db_orm_max_overflow; the README's connection budget adds them up.
ORM_POOL_SIZE = 5
ORM_MAX_OVERFLOW = 5


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = ORM_POOL_SIZE,
    max_overflow: int = ORM_MAX_OVERFLOW,
) -> AsyncEngine:
    """An engine tuned per dialect.

    PostgreSQL: a pool of `pool_size` connections plus up to `max_overflow` more, each
    pinged on checkout.
    SQLite: one connection. The database has a single writer anyway, and one connection
    means no lock contention and no SQLITE_BUSY upgrades; requests queue in the pool
    for well under a millisecond each. WAL keeps the file readable by other processes
    (the CLI) meanwhile.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_file(Path(parsed.database))
        engine = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # A pooled connection the server dropped (restart, failover, an idle kill) is
        # replaced on checkout rather than failing the request that drew it with a 500.
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite would create it 0644, and tighten one an
    older start left readable: it holds every payload, result and password hash. SQLite
    gives the -wal and -shm files the database file's mode, so they follow."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    # Never open (and close) a database file that exists: closing any descriptor of it
    # drops the POSIX locks this process's SQLite connections hold on it (see SQLite's
    # "How To Corrupt" notes), and the server opens the file from two places.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for found in (path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(found.stat().st_mode) & ~PRIVATE_FILE:
                try:
                    found.chmod(PRIVATE_FILE)
                except PermissionError:
                    log.warning("cannot make %s private (mode 0600): not our file", found)


def _configure_sqlite(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.create_function(SQLITE_NOW_FUNCTION, 0, sqlite_now_text)
    dbapi_connection.create_function(SQLITE_NOW_PLUS_FUNCTION, 1, sqlite_now_plus_text)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit; `info` is shared by every session."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)
