"""One aggregate read per second per server, shared by every open dashboard stream.

The loop runs only while someone listens; each stream waits for the next version."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services import overview
from app.services.overview import Overview

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 1.0

Renderer = Callable[[Overview, str], str]


class Feed:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.interval = interval
        self.version = 0
        self.latest: Overview | None = None
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._closed = False
        self._read_at = float("-inf")
        self._rendered: dict[tuple[int, str], str] = {}

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        self._listeners += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            yield
        finally:
            self._listeners -= 1
            if self._listeners == 0:
                await self._stop_loop()

    async def next(self, seen: int) -> tuple[int, Overview] | None:
        """The first overview newer than version `seen`; None once the feed is closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self.version > seen)
            if self._closed or self.latest is None:
                return None
            return self.version, self.latest

    def rendered(self, version: int, found: Overview, role: str, render: Renderer) -> str:
        """Rendered once per version and role, however many streams show it."""
        key = (version, role)
        if key not in self._rendered:
            self._rendered = {k: v for k, v in self._rendered.items() if k[0] == version}
            self._rendered[key] = render(found, role)
        return self._rendered[key]

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
        await self._stop_loop()

    async def _stop_loop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        # A restart (streams reconnect) still reads at most once per interval.
        await asyncio.sleep(max(0.0, self._read_at + self.interval - time.monotonic()))
        while True:
            self._read_at = time.monotonic()
            try:
                async with self.sessionmaker() as session:
                    found = await overview.collect(session)
            except Exception:  # a database hiccup: keep the last picture, try again
                log.exception("dashboard overview failed")
            else:
                async with self._changed:
                    self.latest = found
                    self.version += 1
                    self._changed.notify_all()
            await asyncio.sleep(self.interval)
