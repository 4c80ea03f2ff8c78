"""Throttling of failed logins and registrations, per account (email) and per client address.

Each key counts failures in a fixed window; a key past its limit is refused until its window
ends. With Redis the counters live there, so replicas share them; without it they live in
this process. A Redis that fails costs no login: the throttle then lets the attempt through
(logged), since refusing every login while Redis is down would be worse.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

REDIS_PREFIX = "jobserver:throttle:"
MAX_MEMORY_KEYS = 100_000


@dataclass(frozen=True)
class Limit:
    """`key` may fail `allowed` times within the window."""

    key: str
    allowed: int


class Counter(Protocol):
    async def retry_after(self, key: str, allowed: int) -> float | None: ...
    async def fail(self, key: str, window: float) -> None: ...
    async def clear(self, key: str) -> None: ...


class MemoryCounter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, failures)

    async def retry_after(self, key: str, allowed: int) -> float | None:
        entry = self._windows.get(key)
        if entry is None:
            return None
        ends, failures = entry
        left = ends - time.monotonic()
        if left <= 0:
            self._windows.pop(key, None)
            return None
        return left if failures >= allowed else None

    async def fail(self, key: str, window: float) -> None:
        now = time.monotonic()
        entry = self._windows.get(key)
        if entry is None or entry[0] <= now:
            if len(self._windows) >= MAX_MEMORY_KEYS:
                self._forget_expired(now)
            self._windows[key] = (now + window, 1)
        else:
            self._windows[key] = (entry[0], entry[1] + 1)

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, (ends, _) in self._windows.items() if ends <= now]:
            del self._windows[key]
        if len(self._windows) >= MAX_MEMORY_KEYS:
            self._windows.clear()  # a flood of addresses: start over rather than grow


class RedisCounter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def retry_after(self, key: str, allowed: int) -> float | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(REDIS_PREFIX + key)
            pipe.pttl(REDIS_PREFIX + key)
            failures, ttl_ms = await pipe.execute()
        if failures is None or int(failures) < allowed or ttl_ms <= 0:
            return None
        return float(ttl_ms) / 1000

    async def fail(self, key: str, window: float) -> None:
        name = REDIS_PREFIX + key
        async with self.redis.pipeline(transaction=True) as pipe:
            # The window starts with the first failure (SET NX carries its expiry) and later
            # failures do not extend it; works on any Redis since 2.6.12.
            pipe.set(name, 0, px=int(window * 1000), nx=True)
            pipe.incr(name)
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self.redis.delete(REDIS_PREFIX + key)


class Throttle:
    def __init__(self, counter: Counter, window_seconds: float) -> None:
        self.counter = counter
        self.window = window_seconds

    async def retry_after(self, limits: list[Limit]) -> int | None:
        """Whole seconds until every limit admits an attempt again, or None when all do."""
        longest: float | None = None
        for limit in limits:
            try:
                left = await self.counter.retry_after(limit.key, limit.allowed)
            except Exception as exc:
                log.warning("login throttle unavailable (%r): attempt allowed", exc)
                return None
            if left is not None and (longest is None or left > longest):
                longest = left
        return None if longest is None else max(1, math.ceil(longest))

    async def failed(self, limits: list[Limit]) -> None:
        for limit in limits:
            try:
                await self.counter.fail(limit.key, self.window)
            except Exception as exc:
                log.warning("login throttle could not count a failure (%r)", exc)
                return

    async def succeeded(self, limit: Limit) -> None:
        try:
            await self.counter.clear(limit.key)
        except Exception as exc:
            log.warning("login throttle could not clear %s (%r)", limit.key, exc)


def limits_for(
    action: str, email: str, address: str | None, per_account: int, per_address: int
) -> tuple[Limit, Limit | None]:
    """(the account's limit, the address's limit or None when the address is unknown)."""
    account = Limit(f"{action}:account:{email.strip().lower()}", per_account)
    where = Limit(f"{action}:address:{address}", per_address) if address else None
    return account, where
