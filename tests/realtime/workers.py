"""A zndraw-joblib JobManager in serve mode on a connected zndraw-socketio client, as a
worker host would run it; records claim responses and executions for the tests."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import socketio
from zndraw_joblib.client import Category, ClaimedTask, Extension, JobManager
from zndraw_socketio import wrap

from tests.live import ApiManager

CONNECT_TIMEOUT = 10


class Echo(Extension):
    category: ClassVar[Category] = Category.MODIFIER
    x: int = 0

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.x


@dataclass
class ServedWorker:
    manager: JobManager
    sio: socketio.Client
    executed: queue.Queue[tuple[str, float]] = field(default_factory=queue.Queue)
    claims: list[tuple[float, str | None]] = field(default_factory=list)
    claim_sent: list[float] = field(default_factory=list)
    first_claim: threading.Event = field(default_factory=threading.Event)

    def on_request(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/tasks/claim"):
            self.claim_sent.append(time.perf_counter())

    def on_response(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/tasks/claim") and response.status_code == 200:
            response.read()
            task = response.json()["task"]
            self.claims.append((time.perf_counter(), task["id"] if task else None))
            self.first_claim.set()

    def execute(self, task: ClaimedTask[Any]) -> None:
        self.executed.put((task.task_id, time.perf_counter()))

    def next_executed(self, timeout: float = 5.0) -> str:
        return self.executed.get(timeout=timeout)[0]

    def claim_time(self, task_id: str) -> float:
        return next(at for at, claimed in self.claims if claimed == task_id)


@contextmanager
def served_worker(
    url: str, token: str, room: str, *, polling_interval: float = 30.0
) -> Iterator[ServedWorker]:
    """A registered, serving worker whose first (empty) claim is done: from here on only a
    `task_available` push, or a poll after `polling_interval`, makes it claim again."""
    sio = socketio.Client(reconnection_delay=0.1, reconnection_delay_max=0.5)
    sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=CONNECT_TIMEOUT)
    api = ApiManager(url, token)
    holder: dict[str, ServedWorker] = {}
    manager = JobManager(
        api,
        wrap(sio),
        execute=lambda task: holder["w"].execute(task),
        polling_interval=polling_interval,
        heartbeat_interval=60.0,
    )
    worker = holder["w"] = ServedWorker(manager, sio)
    api.http.event_hooks["response"].append(worker.on_response)
    api.http.event_hooks["request"].append(worker.on_request)
    try:
        manager.register(Echo, room=room)
        assert worker.first_claim.wait(CONNECT_TIMEOUT)
        time.sleep(0.3)  # the join_job_room emit is fire-and-forget
        yield worker
    finally:
        manager.disconnect()
        sio.disconnect()
        api.close()
