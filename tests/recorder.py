"""Captures every event the server publishes, by wrapping the Publisher on `core`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.realtime.publisher import Publisher
from app.services.events import Event
from app.state import Core


class Recorder:
    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.events: list[Event] = []

    @classmethod
    def install(cls, core: Core) -> Recorder:
        recorder = cls(core.publisher)
        core.publisher = recorder  # type: ignore[assignment]  # duck-typed stand-in
        return recorder

    async def publish(self, events: Iterable[Event]) -> None:
        batch = list(events)
        self.events.extend(batch)
        await self.inner.publish(batch)

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.event_name == name]

    def sent(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """(room, payload) of each published event called `name`."""
        return [(e.room, e.payload()) for e in self.named(name)]
