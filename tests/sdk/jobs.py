"""Job classes the SDK tests run (importable by a worker subprocess too)."""

from __future__ import annotations

import asyncio
from collections import Counter

from jobserver_sdk import Job

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
    count: int

    async def handle(self) -> int:
        return self.count * 2
