"""Delivery of published events: to this process's sockets and long-polls at once, and to
every other replica (and from `jobserver worker` processes) through Redis.

The Redis side never holds up a request: deliveries queue in memory and one flusher sends
whatever has queued in one PUBLISH, so a burst of requests costs one round trip, a bulk
of 1,000 tasks one message, and a hung Redis costs the requests nothing (the flusher gives
up on a send after a second; undeliverable messages are dropped with a warning, since the
database stays the source of truth and workers also poll). Each replica skips its own
messages; it delivered them locally already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "jobserver:fanout"
SEND_TIMEOUT_SECONDS = 1.0
# Deliveries waiting for Redis; past this the oldest are dropped (Redis is down or hung).
MAX_QUEUED = 10_000
SUBSCRIBE_TIMEOUT_SECONDS = 10.0
RESUBSCRIBE_SECONDS = 1.0
WARN_EVERY_SECONDS = 30.0
ORIGIN_END = "|"  # a message is `<origin>|<JSON batch>`

Wire = tuple[str, dict[str, Any], str]  # event name, payload, room


class Emitter(Protocol):
    async def emit(self, event: str, data: Any = None, *, room: str | None = None) -> None: ...


class Waiters(Protocol):
    def wake(self, task_ids: Sequence[str]) -> None: ...


class Fanout:
    def __init__(
        self, waiters: Waiters, emitter: Emitter | None = None, redis: Redis | None = None
    ) -> None:
        self.waiters = waiters
        self.emitter = emitter
        self.redis = redis
        self.origin = uuid.uuid4().hex
        self._prefix = f"{self.origin}{ORIGIN_END}".encode()
        self._queue: list[tuple[list[Wire], list[str]]] = []
        self._queued = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._warned_at = float("-inf")

    async def start(self, *, listen: bool = True) -> None:
        """Start the flusher and, when `listen`, the subscription (awaited, so that nothing
        published after start-up is missed)."""
        if self.redis is None:
            return
        self._tasks.append(asyncio.create_task(self._flush_forever(), name="fanout-flush"))
        if listen:
            self._tasks.append(asyncio.create_task(self._listen(), name="fanout-listen"))
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        """Send what is queued (bounded by the send timeout), then stop."""
        if self._queue and self.redis is not None:
            with contextlib.suppress(Exception):
                await self._send(self._take())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def deliver(self, wire: list[Wire], wake: list[str]) -> None:
        """This process's waiters and sockets now; the other replicas on the next flush."""
        await self._deliver_here(wire, wake)
        if self.redis is None or not (wire or wake):
            return
        if len(self._queue) >= MAX_QUEUED:
            self._queue.pop(0)
            self._warn("fan-out queue full (Redis unreachable?): dropping the oldest events")
        self._queue.append((wire, wake))
        self._queued.set()

    async def _deliver_here(self, wire: list[Wire], wake: list[str]) -> None:
        if wake:
            self.waiters.wake(wake)
        if self.emitter is None:
            return
        for name, payload, room in wire:
            try:
                await self.emitter.emit(name, payload, room=room)
            except Exception:
                log.exception("could not emit %s to %s", name, room)

    def _take(self) -> list[tuple[list[Wire], list[str]]]:
        batch, self._queue = self._queue, []
        self._queued.clear()
        return batch

    async def _send(self, batch: list[tuple[list[Wire], list[str]]]) -> None:
        assert self.redis is not None
        # The origin leads the message, so a replica skips its own without parsing them.
        message = self._prefix + orjson.dumps(batch)
        await asyncio.wait_for(self.redis.publish(CHANNEL, message), SEND_TIMEOUT_SECONDS)

    async def _flush_forever(self) -> None:
        while True:
            await self._queued.wait()
            batch = self._take()
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._warn(f"could not send {len(batch)} event batch(es) to Redis: {exc!r}")

    async def _listen(self) -> None:
        assert self.redis is not None
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        await self._received(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis blip must not end cross-replica delivery for good
                self._warn("fan-out lost Redis; resubscribing")
                await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def _received(self, data: Any) -> None:
        if not isinstance(data, bytes) or data.startswith(self._prefix):
            return
        try:
            batch = orjson.loads(data.partition(ORIGIN_END.encode())[2])
            for wire, wake in batch:
                await self._deliver_here([(n, p, r) for n, p, r in wire], list(wake))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            log.warning("ignored a malformed fan-out message")

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(text)
