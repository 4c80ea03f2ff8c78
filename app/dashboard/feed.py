"""One aggregate read per second per server, shared by every open dashboard stream: the
overview, plus the live part of each job page someone is watching.

The loop runs only while someone listens; each stream waits for the next snapshot."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services import job_page, overview
from app.services.job_page import JobNow
from app.services.overview import Overview

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 1.0
# Each watched job adds a few bounded reads per interval; past this many, the extra job
# pages still get the stream's pulse, only not their numbers.
MAX_WATCHED_JOBS = 50


@dataclass(frozen=True)
class Snapshot:
    version: int
    overview: Overview
    jobs: Mapping[str, JobNow | None] = field(default_factory=dict)


# What a stream sends for one snapshot: an SSE event name and its JSON data.
Show = Callable[[Snapshot], tuple[str, dict[str, Any]]]


class Feed:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.interval = interval
        self.latest: Snapshot | None = None
        self._listeners = 0
        self._watched: collections.Counter[str] = collections.Counter()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._closed = False
        self._read_at = float("-inf")
        self._rendered: dict[tuple[int, str], str] = {}

    @property
    def version(self) -> int:
        return 0 if self.latest is None else self.latest.version

    @contextlib.asynccontextmanager
    async def listening(self, job: str | None = None) -> AsyncIterator[None]:
        """While inside, the loop runs, and reads `job`'s live numbers too (within the cap)."""
        fits = job in self._watched or len(self._watched) < MAX_WATCHED_JOBS
        watched = job if fits else None
        if watched is not None:
            self._watched[watched] += 1
        self._listeners += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            yield
        finally:
            self._listeners -= 1
            if watched is not None:
                self._watched[watched] -= 1
                if self._watched[watched] <= 0:
                    del self._watched[watched]
            if self._listeners == 0:
                await self._stop_loop()

    async def next(self, seen: int) -> Snapshot | None:
        """The first snapshot newer than version `seen`; None once the feed is closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self.version > seen)
            return None if self._closed else self.latest

    def rendered(self, version: int, key: str, render: Callable[[], str]) -> str:
        """Rendered once per version and key (a role, a job), however many streams show it."""
        if (version, key) not in self._rendered:
            self._rendered = {k: v for k, v in self._rendered.items() if k[0] == version}
            self._rendered[version, key] = render()
        return self._rendered[version, key]

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

    async def _read(self) -> tuple[Overview, dict[str, JobNow | None]]:
        async with self.sessionmaker() as session:
            found = await overview.collect(session)
            jobs = {name: await job_page.live(session, name) for name in list(self._watched)}
        return found, jobs

    async def _run(self) -> None:
        # A restart (streams reconnect) still reads at most once per interval.
        await asyncio.sleep(max(0.0, self._read_at + self.interval - time.monotonic()))
        while True:
            self._read_at = time.monotonic()
            try:
                found, jobs = await self._read()
            except Exception:  # a database hiccup: keep the last picture, try again
                log.exception("dashboard overview failed")
            else:
                async with self._changed:
                    self.latest = Snapshot(self.version + 1, found, jobs)
                    self._changed.notify_all()
            await asyncio.sleep(self.interval)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def events(
    feed: Feed, show: Show, seconds: float, reconnect_ms: int, job: str | None = None
) -> AsyncIterator[str]:
    """A Server-Sent Events stream of `show(snapshot)`, one event per new snapshot.

    It ends after `seconds` with an `end` event, which tells the browser that this close is
    planned (it reconnects at once, and the page does not call it a dropped connection):
    uvicorn waits for open responses before it stops, and would wait forever on endless ones."""
    deadline = time.monotonic() + seconds
    yield f"retry: {reconnect_ms}\n\n"
    async with feed.listening(job):
        seen = 0
        while (left := deadline - time.monotonic()) > 0:
            try:
                snapshot = await asyncio.wait_for(feed.next(seen), left)
            except TimeoutError:
                break
            if snapshot is None:
                return  # the server is stopping: the browser sees the connection drop
            seen = snapshot.version
            yield _event(*show(snapshot))
    yield _event("end", {})
