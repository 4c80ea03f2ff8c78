"""Job classes the SDK tests run (importable by a worker subprocess too)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from jobserver_sdk import Job
from pydantic import BaseModel

# What ran in this process, keyed by a tag the test chose: exactly-once is checked here.
EXECUTIONS: Counter[str] = Counter()
STOPPED: set[str] = set()


class SayHello(Job):
    who: str = "world"

    async def handle(self) -> dict[str, str]:
        EXECUTIONS[self.who] += 1
        print(f"say hello {self.who}")
        return {"greeted": self.who}


class Count(Job):
    tag: str
    n: int
    seconds: float = 0.0

    async def handle(self) -> int:
        EXECUTIONS[f"{self.tag}:{self.n}"] += 1
        if self.seconds:
            await asyncio.sleep(self.seconds)
        return self.n


class Flaky(Job):
    max_attempts = 3
    tag: str

    async def handle(self) -> None:
        EXECUTIONS[self.tag] += 1
        raise ValueError(f"boom {self.tag}")


class Sleep(Job):
    tag: str = ""
    seconds: float

    async def handle(self) -> str:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            STOPPED.add(self.tag)
            raise
        return "slept"


class TimesOut(Job):
    timeout_seconds = 0.5
    seconds: float = 30.0

    async def handle(self) -> None:
        await asyncio.sleep(self.seconds)


class Strict(Job):
    """Its payload is checked by the worker only (the server takes any)."""

    validate_payload = False
    count: int

    async def handle(self) -> int:
        return self.count * 2


class SyncSleep(Job):
    """A blocking handler, written as a plain function: the worker runs it in a thread."""

    seconds: float = 0.2

    def handle(self) -> str:
        time.sleep(self.seconds)
        return threading.current_thread().name


class BlocksLoop(Job):
    """A handler that (wrongly) blocks the event loop it runs on."""

    tag: str
    seconds: float

    async def handle(self) -> str:
        EXECUTIONS[self.tag] += 1
        time.sleep(self.seconds)  # noqa: ASYNC251 - blocking the loop is what is tested
        return "woke"


class Huge(Job):
    """Returns a result over the server's default size limit (1 MiB)."""

    async def handle(self) -> str:
        return "x" * (1024 * 1024 + 1)


def returns_its_coroutine(handle: Callable[[Job], Awaitable[str]]) -> Callable[[Job], Any]:
    """A decorator written as a plain function around an `async def`: what the worker gets
    is a sync `handle` that hands back a coroutine."""

    @functools.wraps(handle)
    def wrapper(self: Job) -> Any:
        return handle(self)

    return wrapper


class DecoratedAsync(Job):
    who: str

    @returns_its_coroutine
    async def handle(self) -> str:
        await asyncio.sleep(0)
        return f"decorated {self.who}"


class SyncFails(Job):
    """A plain `def handle` that raises: the attempt fails with its text."""

    def handle(self) -> None:
        raise ValueError("sync boom")


class ReservedNames(Job):
    """Fields named like keys the SDK and the server use around a payload."""

    payload: str
    priority: int
    max_attempts: int
    timeout_seconds: float
    room: str
    delay: float
    job_name: str = "not the job's name"
    status: str = "s"
    id: int = 7

    async def handle(self) -> dict[str, Any]:
        return self.model_dump()


class Corner(BaseModel):
    x: int
    y: int


class Place(Job):
    """A nested model: its schema reaches Corner through `$defs` and `$ref`."""

    corner: Corner
    label: str = ""

    async def handle(self) -> int:
        return self.corner.x + self.corner.y
