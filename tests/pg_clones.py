"""PostgreSQL test databases: clones of the session's migrated template, made one ahead and
dropped behind, on a thread of their own.

Every test still gets a database of its own, fresh from the template; only the waiting
leaves the test's setup and teardown. A clone (`CREATE DATABASE ... TEMPLATE`) costs
0.1-0.3 s. A drop costs a checkpoint: PostgreSQL 15 runs one for every `DROP DATABASE`
and waits for it, 0.2 s on a quiet server and over a second while other tests write.
Drops that wait at the same time share one checkpoint, so they go in concurrent batches.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import text

from app.db.session import make_engine

T = TypeVar("T")
# Drops run concurrently up to this many (one connection each).
DROP_BATCH = 4
# What is still running at the session's end is waited for this long.
CLOSE_TIMEOUT_SECONDS = 120.0


class PgClones:
    """Hands out fresh clones of `template` (named `{prefix}<random>`); `give_back` drops
    one in the background."""

    def __init__(self, admin_url: str, template: str, prefix: str) -> None:
        self.template = template
        self.prefix = prefix
        # Used only on the thread's loop (asyncpg connections belong to one loop). One
        # connection stays open for the clones; the drops' extra ones close after use.
        self._engine = make_engine(admin_url, pool_size=1, max_overflow=DROP_BATCH)
        self._create_lock = asyncio.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pg-clones", daemon=True
        )
        self._thread.start()
        self._next: concurrent.futures.Future[str] | None = None
        # Touched on the thread's loop only:
        self._to_drop: list[str] = []
        self._dropper: asyncio.Task[None] | None = None
        self._errors: list[str] = []

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _execute(self, statement: str) -> None:
        async with self._engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))

    async def _create(self) -> str:
        name = f"{self.prefix}{uuid.uuid4().hex[:12]}"
        async with self._create_lock:
            await self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    async def take(self) -> str:
        """A fresh clone's name; the next one is started right away."""
        ready = self._next or self._submit(self._create())
        self._next = self._submit(self._create())
        try:
            return await asyncio.wrap_future(ready)
        except BaseException:
            # Interrupted (a timeout): the clone, once made, is dropped all the same.
            ready.add_done_callback(self._give_back_made)
            raise

    def _give_back_made(self, made: concurrent.futures.Future[str]) -> None:
        if not made.cancelled() and made.exception() is None:
            self.give_back(made.result())

    def give_back(self, name: str) -> None:
        """Drop the clone (ending its connections) in the background."""
        self._loop.call_soon_threadsafe(self._queue_drop, name)

    def _queue_drop(self, name: str) -> None:
        self._to_drop.append(name)
        if self._dropper is None or self._dropper.done():
            self._dropper = self._loop.create_task(self._drop_queued())

    async def _drop_queued(self) -> None:
        while self._to_drop:
            batch, self._to_drop = self._to_drop[:DROP_BATCH], self._to_drop[DROP_BATCH:]
            await asyncio.gather(*(self._drop(name) for name in batch))

    async def _drop(self, name: str) -> None:
        try:
            await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:
            self._errors.append(f"DROP DATABASE {name}: {type(exc).__name__}: {exc}")

    async def _finish(self) -> None:
        while self._dropper is not None and not self._dropper.done():
            await self._dropper
        await self._engine.dispose()

    def close(self) -> None:
        """Drop the clone made ahead, wait for every drop, stop the thread. Raises when a
        drop failed, as a drop in the test's own teardown would have."""
        try:
            if self._next is not None:
                try:
                    self.give_back(self._next.result(timeout=CLOSE_TIMEOUT_SECONDS))
                except Exception as exc:
                    self._errors.append(f"CREATE DATABASE: {type(exc).__name__}: {exc}")
                self._next = None
            try:
                self._submit(self._finish()).result(timeout=CLOSE_TIMEOUT_SECONDS)
            except TimeoutError:
                self._errors.append(f"drops unfinished after {CLOSE_TIMEOUT_SECONDS:.0f} s")
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CLOSE_TIMEOUT_SECONDS)
            if not self._thread.is_alive():
                self._loop.close()
        if self._errors:
            raise RuntimeError("test databases left behind:\n" + "\n".join(self._errors))
