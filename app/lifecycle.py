"""When this server process starts stopping, and how long each shutdown step may take.

uvicorn runs the lifespan shutdown only after it has drained open connections, so the
stop is learnt from SIGINT/SIGTERM themselves: waits end at once and no worker is cleaned
up for a socket that closed because we stop. No web framework here (services use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from types import FrameType, TracebackType
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
SignalHandler = Callable[[int, FrameType | None], Any]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# An orchestrator sends SIGKILL 10 s after SIGTERM (Docker, Kubernetes). uvicorn drains
# open requests for at most DRAIN_SECONDS (long-polls and streams end at once, so only a
# stuck request waits that long), then the lifespan shutdown gets SHUTDOWN_SECONDS.
DRAIN_SECONDS = 3  # uvicorn takes whole seconds
SHUTDOWN_SECONDS = 4.0
# A step reached with the budget spent still gets this long to close what it holds.
LAST_CHANCE_SECONDS = 0.1
# Each on-stop callback (drop cleanup timers, end streams) is quick; this bounds a stuck one.
ON_STOP_SECONDS = 1.0


class Lifecycle:
    """Whether this server process is stopping; built once per app in create_app.

    `serving()` (entered by the lifespan) chains a handler in front of the server's own
    SIGINT/SIGTERM handlers and starts the shutdown budget when it exits.
    """

    def __init__(self) -> None:
        self._stopping = False
        self._woken: set[asyncio.Event] = set()
        self._on_stop: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._stop_task: asyncio.Task[None] | None = None
        self._chained: dict[int, SignalHandler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadline = float("inf")

    @property
    def stopping(self) -> bool:
        return self._stopping

    def on_stop(self, step: str, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` (bounded, in registration order) the moment stopping begins."""
        self._on_stop.append((step, callback))

    def stop(self) -> None:
        """Begin stopping (idempotent): wake every waiter, run the on-stop callbacks."""
        if self._stopping:
            return
        self._stopping = True
        log.info("server stopping: waits end now, disconnected workers are kept")
        for woke in self._woken:
            woke.set()
        self._stop_task = asyncio.get_running_loop().create_task(
            self._run_on_stop(), name="lifecycle-stop"
        )

    @contextlib.contextmanager
    def waking(self, woke: asyncio.Event) -> Iterator[None]:
        """Set `woke` when stopping begins (at once if it has)."""
        if self._stopping:
            woke.set()
        self._woken.add(woke)
        try:
            yield
        finally:
            self._woken.discard(woke)

    async def unless_stopping(self, work: Coroutine[Any, Any, T]) -> T | None:
        """`work`'s result, or None when stopping begins first (`work` is then cancelled)."""
        task = asyncio.ensure_future(work)
        stopped = asyncio.Event()
        with self.waking(stopped):
            waiter = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                if not task.done():
                    task.cancel()
        if not task.done() or task.cancelled():
            await asyncio.wait((task,))  # let it unwind (its own waiter registrations)
            return None
        return task.result()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """While open, SIGINT/SIGTERM begin stopping before the server's own handler runs.
        On exit: stopping (if not yet), the on-stop callbacks finish, the budget starts."""
        self._install()
        try:
            yield
        finally:
            self._deadline = time.monotonic() + SHUTDOWN_SECONDS
            self.stop()
            assert self._stop_task is not None
            await asyncio.wait((self._stop_task,))
            self._restore()

    async def bounded(self, step: str, cap: float, work: Callable[[], Awaitable[object]]) -> None:
        """Run one shutdown step for at most `cap` seconds and what is left of the budget;
        a step that hangs is abandoned (logged) so the process still exits in time."""
        seconds = max(LAST_CHANCE_SECONDS, min(cap, self._deadline - time.monotonic()))
        task = asyncio.ensure_future(work())
        try:
            done, _ = await asyncio.wait((task,), timeout=seconds)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            # Not awaited after the cancel (unlike wait_for): a step that swallows the
            # cancellation must not hold the exit either.
            task.cancel()
            log.warning("shutdown: %s did not finish within %.1f s; moving on", step, seconds)
            return
        task.result()  # the step's own error, if any

    def bounded_exit(
        self, step: str, cap: float, context: AbstractAsyncContextManager[T]
    ) -> AbstractAsyncContextManager[T]:
        """`context` whose exit is a bounded shutdown step."""
        return _BoundedExit(self, step, cap, context)

    async def _run_on_stop(self) -> None:
        for step, callback in self._on_stop:
            try:
                await self.bounded(step, ON_STOP_SECONDS, callback)
            except Exception:  # one failing step must not keep the others from running
                log.exception("shutdown: %s failed", step)

    def _install(self) -> None:
        # Signal handlers can only be set from the main thread; a server run elsewhere
        # (a test's thread) learns of the stop at lifespan shutdown only.
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            # Only in front of a Python handler (uvicorn's, installed for the serve): with
            # the default action there is no graceful stop to prepare for.
            if callable(previous):
                self._chained[sig] = previous
                signal.signal(sig, self._on_signal)

    def _restore(self) -> None:
        for sig, previous in self._chained.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._chained.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of the loop's own thread: hand over to the loop, in a
        # context of its own (not that of the request the signal happened to interrupt).
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.stop, context=contextvars.Context())
        chained = self._chained.get(sig)
        if chained is not None:
            chained(sig, frame)


class _BoundedExit(AbstractAsyncContextManager[T]):
    def __init__(
        self,
        lifecycle: Lifecycle,
        step: str,
        cap: float,
        context: AbstractAsyncContextManager[T],
    ) -> None:
        self._lifecycle = lifecycle
        self._step = step
        self._cap = cap
        self._context = context

    async def __aenter__(self) -> T:
        return await self._context.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._lifecycle.bounded(
            self._step, self._cap, lambda: self._context.__aexit__(exc_type, exc, tb)
        )
