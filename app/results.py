"""The provider result cache (BACKGROUND.md §3): one ResultBackend protocol, kept in memory
(embedded mode) or in Redis (production, so waiters on every replica wake)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

NOTIFY_PREFIX = "notify:"
# Only result keys are ever notified; a narrow pattern keeps unrelated traffic away.
NOTIFY_PATTERN = f"{NOTIFY_PREFIX}provider-result:*"
PURGE_INTERVAL_SECONDS = 60.0
RESUBSCRIBE_DELAY_SECONDS = 1.0


class ResultBackend(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def store(self, key: str, data: bytes, ttl: int) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def delete(self, key: str) -> None: ...
    async def acquire_inflight(self, key: str, ttl: int) -> bool: ...
    async def release_inflight(self, key: str) -> None: ...
    async def wait_for_key(self, key: str, timeout: float) -> bytes | None: ...  # noqa: ASYNC109 - the contract's signature
    async def notify_key(self, key: str) -> None: ...


class _Waiters:
    """asyncio events of this process's waiters, keyed by cache key."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, key: str) -> Iterator[asyncio.Event]:
        woke = asyncio.Event()
        self._by_key.setdefault(key, set()).add(woke)
        try:
            yield woke
        finally:
            waiters = self._by_key.get(key)
            if waiters is not None:
                waiters.discard(woke)
                if not waiters:
                    del self._by_key[key]

    def wake(self, key: str) -> None:
        for woke in self._by_key.get(key, ()):
            woke.set()

    def wake_all(self) -> None:
        for waiters in self._by_key.values():
            for woke in waiters:
                woke.set()


async def _await_value(
    read: Callable[[str], Awaitable[bytes | None]], key: str, woke: asyncio.Event, seconds: float
) -> bytes | None:
    """Check, then wait for wake-ups until the deadline. The caller is already watching
    `key`, so a value stored between the check and the wait still wakes us."""
    value = await read(key)
    if value is not None or seconds <= 0:
        return value
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        try:
            await asyncio.wait_for(woke.wait(), remaining)
        except TimeoutError:
            # One last look: a notification lost in transit must not cost a 504.
            return await read(key)
        woke.clear()
        value = await read(key)
        if value is not None:
            return value


class MemoryResultBackend:
    """Embedded mode: dicts and asyncio events of one process. Expiry is checked on read;
    expired entries are also purged now and then so the dicts do not grow for ever."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[bytes, float]] = {}
        self._locks: dict[str, float] = {}
        self._waiters = _Waiters()
        self._next_purge = clock() + PURGE_INTERVAL_SECONDS

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def store(self, key: str, data: bytes, ttl: int) -> None:
        now = self._clock()
        self._purge(now)
        self._values[key] = (bytes(data), now + max(ttl, 1))  # as Redis: at least 1 s

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        data, expires = entry
        if expires <= self._clock():
            del self._values[key]
            return None
        return data

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def acquire_inflight(self, key: str, ttl: int) -> bool:
        now = self._clock()
        expires = self._locks.get(key)
        if expires is not None and expires > now:
            return False
        self._locks[key] = now + max(ttl, 1)
        return True

    async def release_inflight(self, key: str) -> None:
        self._locks.pop(key, None)

    async def wait_for_key(self, key: str, timeout: float) -> bytes | None:  # noqa: ASYNC109
        with self._waiters.watch(key) as woke:
            return await _await_value(self.get, key, woke, timeout)

    async def notify_key(self, key: str) -> None:
        self._waiters.wake(key)

    def _purge(self, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL_SECONDS
        self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._locks = {k: v for k, v in self._locks.items() if v > now}


class RedisResultBackend:
    """Production: values and locks in Redis; `PUBLISH notify:{key}` wakes waiters.

    One pattern subscription per process serves all of its waiters (rather than a Redis
    connection per waiting read). A waiter registers locally only while that subscription
    is confirmed, which keeps the contract's subscribe-then-check order; if the
    subscription drops, every waiter is woken to re-check the cache itself.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiters = _Waiters()
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="result-notifier")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
            self._subscribed.clear()

    async def store(self, key: str, data: bytes, ttl: int) -> None:
        # Redis refuses EX 0; a zero TTL means "as short as Redis allows".
        await self._redis.set(key, data, ex=max(ttl, 1))

    async def get(self, key: str) -> bytes | None:
        value: Any = await self._redis.get(key)
        return bytes(value) if value is not None else None

    async def delete(self, key: str) -> None:
        await self._redis.delete(key)

    async def acquire_inflight(self, key: str, ttl: int) -> bool:
        return bool(await self._redis.set(key, b"1", nx=True, ex=max(ttl, 1)))

    async def release_inflight(self, key: str) -> None:
        await self._redis.delete(key)

    async def wait_for_key(self, key: str, timeout: float) -> bytes | None:  # noqa: ASYNC109
        if self._listener is None:
            await self.start()
        # While resubscribing after a Redis blip we still wait: the re-subscription wakes
        # every waiter to re-check, and so does the deadline.
        with self._waiters.watch(key) as woke:
            return await _await_value(self.get, key, woke, timeout)

    async def notify_key(self, key: str) -> None:
        self._waiters.wake(key)  # no round trip for this replica's own waiters
        await self._redis.publish(NOTIFY_PREFIX + key, b"")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(NOTIFY_PATTERN)
                    async for message in pubsub.listen():
                        self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis blip must not end provider reads for good
                log.warning("result notifier lost Redis; resubscribing", exc_info=True)
                self._subscribed.clear()
                self._waiters.wake_all()
                await asyncio.sleep(RESUBSCRIBE_DELAY_SECONDS)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "psubscribe":
            # Confirmed by the server: every PUBLISH from now on reaches us.
            self._subscribed.set()
            self._waiters.wake_all()
        elif kind == "pmessage":
            channel = message.get("channel", b"")
            if isinstance(channel, bytes):
                channel = channel.decode()
            self._waiters.wake(str(channel).removeprefix(NOTIFY_PREFIX))
