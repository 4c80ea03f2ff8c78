"""Which sockets hold which workers, and the grace timers that clean up a gone worker.

No Socket.IO here: the server calls in on join/disconnect, the REST heartbeat on PATCH.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime

from redis.asyncio import Redis

from app.lifecycle import Lifecycle
from app.services.tasks.service import TaskService

log = logging.getLogger(__name__)

HOLDERS_KEY = "jobserver:worker-sockets:{worker_id}"
# Long enough to outlive any grace period; short enough that entries left by a crashed
# replica stop blocking disconnect-cleanup (the sweeper covers that worker meanwhile).
HOLDERS_TTL_SECONDS = 24 * 3600


class Presence:
    """Per-process registry of socket -> worker ids plus cross-replica holders in Redis.

    A worker whose last socket disconnects is cleaned up after `grace` seconds unless,
    by then, a socket (on any replica) holds it again or it heartbeated after the
    disconnect. The fire-time checks make a re-join on another replica cancel too.
    Never while this server stops: its sockets close because we stop, not the workers.
    """

    def __init__(
        self,
        tasks: TaskService,
        grace: float,
        lifecycle: Lifecycle,
        redis: Redis | None = None,
    ) -> None:
        self._tasks = tasks
        self._lifecycle = lifecycle
        self._grace = grace
        self._redis = redis
        self._by_sid: dict[str, set[uuid.UUID]] = {}
        self._holders: dict[uuid.UUID, set[str]] = {}
        self._timers: dict[uuid.UUID, asyncio.Task[None]] = {}

    def workers_of(self, sid: str) -> frozenset[uuid.UUID]:
        return frozenset(self._by_sid.get(sid, ()))

    def pending(self, worker_id: uuid.UUID) -> bool:
        """A cleanup timer is waiting for this worker (in this process)."""
        return worker_id in self._timers

    async def hold(self, sid: str, worker_id: uuid.UUID) -> None:
        """Socket `sid` joined with `worker_id`: cancel any pending cleanup. Idempotent."""
        self._cancel(worker_id)
        if worker_id in self._by_sid.setdefault(sid, set()):
            return
        self._by_sid[sid].add(worker_id)
        self._holders.setdefault(worker_id, set()).add(sid)
        if self._redis is not None:
            key = HOLDERS_KEY.format(worker_id=worker_id)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.hset(key, sid, 1)
                    pipe.expire(key, HOLDERS_TTL_SECONDS)
                    await pipe.execute()
            except Exception:  # other replicas then rely on the heartbeat check alone
                log.warning("could not record socket of worker %s in Redis", worker_id)

    async def release(self, sid: str) -> None:
        """Socket `sid` is gone: schedule cleanup of workers no other socket holds."""
        for worker_id in self._by_sid.pop(sid, set()):
            holders = self._holders.get(worker_id, set())
            holders.discard(sid)
            if not holders:
                self._holders.pop(worker_id, None)
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.hdel(HOLDERS_KEY.format(worker_id=worker_id), sid)
            stopping = self._lifecycle.stopping
            if not holders and worker_id not in self._timers and not stopping:
                self._timers[worker_id] = asyncio.create_task(
                    self._expire(worker_id), name=f"worker-grace-{worker_id}"
                )

    def heartbeat(self, worker_id: uuid.UUID) -> None:
        """The worker heartbeated over REST: it is alive, whatever its socket did."""
        self._cancel(worker_id)

    async def stop(self) -> None:
        """Drop the pending cleanups without running them (the server is stopping)."""
        timers = list(self._timers.values())
        self._timers.clear()
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    def _cancel(self, worker_id: uuid.UUID) -> None:
        timer = self._timers.pop(worker_id, None)
        if timer is not None:
            timer.cancel()

    async def _expire(self, worker_id: uuid.UUID) -> None:
        try:
            disconnected_at = await self._tasks.store.now()
            await asyncio.sleep(self._grace)
            if self._lifecycle.stopping:
                return
            if worker_id in self._holders or await self._held_elsewhere(worker_id):
                return
            # Past the checks a late re-join no longer cancels: a half-published cleanup
            # would be worse than the rare join that races the deadline.
            if self._timers.get(worker_id) is asyncio.current_task():
                del self._timers[worker_id]
            await self._cleanup(worker_id, disconnected_at)
        except asyncio.CancelledError:
            raise
        except Exception:  # the sweeper is the fallback for a worker we failed to clean
            log.exception("disconnect cleanup of worker %s failed", worker_id)
        finally:
            if self._timers.get(worker_id) is asyncio.current_task():
                del self._timers[worker_id]

    async def _held_elsewhere(self, worker_id: uuid.UUID) -> bool:
        if self._redis is None:
            return False
        count = await self._redis.hlen(HOLDERS_KEY.format(worker_id=worker_id))
        return bool(count)

    async def _cleanup(self, worker_id: uuid.UUID, disconnected_at: datetime) -> None:
        # Only if it stayed silent: a heartbeat racing us either lands first and spares
        # the worker, or waits for the cleanup's row lock and then finds it gone.
        gone = await self._tasks.lose_workers([worker_id], silent_since=disconnected_at)
        if gone:
            log.info("cleaned up worker %s after its socket left", worker_id)
