"""A short-lived cache of token -> Actor, so a burst of worker calls does not look the
same user up on every request.

Entries live `ttl` seconds; any flush that changes a user in this process clears the cache
(db/models.py), so only changes made by another process can go unseen, for at most `ttl`.
"""

from __future__ import annotations

import time

from app.services.actors import Actor

MAX_ENTRIES = 10_000


class ActorCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Actor]] = {}

    def get(self, token: str) -> Actor | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        expires, actor = entry
        if time.monotonic() >= expires:
            self._entries.pop(token, None)
            return None
        return actor

    def put(self, token: str, actor: Actor) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[token] = (time.monotonic() + self.ttl, actor)

    def clear(self) -> None:
        self._entries.clear()
