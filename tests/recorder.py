"""Captures every event the server publishes, by wrapping the Publisher on `core`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from app.realtime.publisher import Publisher
from app.services.events import Event
from app.state import Core

WAIT_SECONDS = 10.0


class Recorder:
    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.events: list[Event] = []
        self._published = asyncio.Event()

    @classmethod
    def install(cls, core: Core) -> Recorder:
        recorder = cls(core.publisher)
        core.publisher = recorder  # type: ignore[assignment]  # duck-typed stand-in
        core.tasks.publisher = recorder
        return recorder

    async def publish(self, events: Iterable[Event]) -> None:
        batch = list(events)
        self.events.extend(batch)
        self._published.set()
        await self.inner.publish(batch)

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.event_name == name]

    def sent(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """(room, payload) of each published event called `name`."""
        return [(e.room, e.payload()) for e in self.named(name)]

    async def wait_for(self, name: str, count: int = 1) -> None:
        """Until `count` events called `name` were published (10 s at most)."""
        async with asyncio.timeout(WAIT_SECONDS):
            while len(self.named(name)) < count:
                self._published.clear()
                await self._published.wait()
