"""The threads that run blocking @internal extensions (JOBSERVER_INTERNAL_THREADS).

Never asyncio's default pool: password hashing and other short jobs of the server wait on
that one, and six long extensions used to fill it (a dashboard sign-in took 11 s). A task
takes a slot before it turns `running`, so the slots, not a queue, bound the work: a task
waiting for one stays `claimed`.

The threads are daemons: a running extension cannot be interrupted, and a thread that
Python joins at exit (as ThreadPoolExecutor's are) would hold the process past the
orchestrator's SIGKILL. Such a task stays `running` until the stuck-task rule ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
THREAD_PREFIX = "jobserver-extension"

_Work = tuple[Future[Any], contextvars.Context, Callable[[], Any]]


class ThreadsClosed(RuntimeError):
    """The process is stopping: no extension starts any more."""


class ExtensionThreads:
    def __init__(self, size: int) -> None:
        self.size = size
        self._slots = asyncio.Semaphore(size)
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._shut = False

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free thread; ThreadsClosed once stopping began (even after waiting)."""
        async with self._slots:
            if self._closed:
                raise ThreadsClosed("the server is stopping")
            yield

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` on one of the threads, in the caller's context (log fields, request id)."""
        with self._lock:
            if self._shut:
                raise ThreadsClosed("the extension threads are shut down")
            self._start_threads()
            future: Future[T] = Future()
            self._work.put((future, contextvars.copy_context(), fn))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """No new slot is granted; what runs keeps running."""
        self._closed = True

    def shutdown(self) -> None:
        """Close, and let each thread end once it has nothing to do (never waits for one)."""
        with self._lock:
            self.close()
            if self._shut:
                return
            self._shut = True
            for _ in self._threads:
                self._work.put(None)

    def _start_threads(self) -> None:
        # All at the first use: idle threads cost nothing, and no thread is started for an
        # app that never runs an extension (most tests, servers without @internal jobs).
        while len(self._threads) < self.size:
            thread = threading.Thread(
                target=self._serve, name=f"{THREAD_PREFIX}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            future, context, fn = work
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up while it waited
            try:
                result = context.run(fn)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
