"""The stack's load run, through the proxy only: 4 SDK worker processes and 2 zndraw-joblib
JobManagers serve two jobs of one room, 2,000 tasks arrive in bulk batches (the backlog
kept under BACKLOG), a Socket.IO room listener counts the status events. Disruptions (a
killed or restarted replica) run at given submission counts. Every execution is recorded
by the task's `n`, so a task run twice or never shows up."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import socketio
from jobserver_sdk import Job
from zndraw_joblib.client import Category, ClaimedTask, Extension, JobManager
from zndraw_socketio import wrap

from tests.container.stack import ROOT, Stack, bearer
from tests.live import ApiManager

TASKS = 2000
SDK_WORKERS = 4
MANAGERS = 2
MANAGER_EVERY = 5  # every 5th task goes to the JobManagers' job, the rest to the SDK's
BATCH = 100
BACKLOG = 400
FINISH_TIMEOUT = 300.0
READY_TIMEOUT = 60.0
RECORD_DIR = "JOBSERVER_LOAD_RECORD_DIR"
# The same settings on the one-replica and the scaled stack, so their figures compare: the
# leader sweeps every 5 s, and a claim whose answer died with a replica is back in 20 s.
SETTINGS = {"JOBSERVER_SWEEPER_INTERVAL_SECONDS": "5", "JOBSERVER_CLAIM_LEASE_SECONDS": "20"}


class LoadEcho(Job):
    """The SDK workers' job (run in `python -m jobserver_sdk worker` processes)."""

    n: int

    async def handle(self) -> int:
        record = Path(os.environ[RECORD_DIR]) / f"sdk-{os.getpid()}.txt"
        with record.open("a") as out:
            out.write(f"{self.n}\n")
        return self.n


class ManagedEcho(Extension):
    """The JobManagers' job."""

    category: ClassVar[Category] = Category.MODIFIER
    n: int = 0

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.n


class FencedReports(httpx.HTTPTransport):
    """The host plumbing a JobManager gets here (CLIENT.md: the host supplies `http`).
    zndraw-joblib sends its reports unfenced, and the contract answers an unfenced repeat
    of the current status with 409: a `running` report whose answer died with its replica
    would leave the task running for good. So each report carries the attempt and worker
    of its claim, which makes a repeat a 200 no-op, and a report or read whose answer was
    lost (502/503/504), or that never reached a replica, is sent again. A claim is never
    resent: one whose answer was lost comes back when its lease ends."""

    ATTEMPTS = 6

    def __init__(self) -> None:
        super().__init__()
        self.fences: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request = self._fenced(request)
        response = self._send(request)
        if request.method == "POST" and request.url.path.endswith("/tasks/claim"):
            response.read()
            task = response.json().get("task") if response.status_code == 200 else None
            if task is not None:
                worker_id = json.loads(request.content)["worker_id"]
                with self.lock:
                    self.fences[str(task["id"])] = {
                        "attempt": task["attempt"],
                        "worker_id": worker_id,
                    }
        return response

    def _fenced(self, request: httpx.Request) -> httpx.Request:
        if request.method != "PATCH" or "/v1/joblib/tasks/" not in request.url.path:
            return request
        with self.lock:
            fence = self.fences.get(request.url.path.rsplit("/", 1)[-1])
        if fence is None:
            return request
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        body = {**json.loads(request.content), **fence}
        return httpx.Request(request.method, request.url, headers=headers, json=body)

    def _send(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(self.ATTEMPTS):
            last = attempt == self.ATTEMPTS - 1
            try:
                response = super().handle_request(request)
            except httpx.ConnectError:
                if last:
                    raise
                time.sleep(0.5)
                continue
            lost = response.status_code in (502, 503, 504) and request.method in ("GET", "PATCH")
            if not lost or last:
                return response
            response.close()
            time.sleep(0.5)
        raise AssertionError("unreachable")


@dataclass
class RoomListener:
    """A Socket.IO client in the room (default transports: long-polling, then the
    WebSocket upgrade), rejoining after every reconnect, counting status events."""

    url: str
    token: str
    room: str
    sio: socketio.Client = field(init=False)
    arrivals: list[float] = field(default_factory=list)
    completed: set[str] = field(default_factory=set)
    connects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.sio = socketio.Client(reconnection_delay=0.2, reconnection_delay_max=1.0)
        self.sio.on("connect", self._join)
        self.sio.on("task_status_event", self._on_status)

    def _join(self) -> None:
        self.connects += 1
        self.sio.emit("room_join", {"room_id": self.room})

    def _on_status(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.arrivals.append(time.monotonic())
            if data.get("status") == "completed":
                self.completed.add(str(data["id"]))

    def events_since(self, moment: float) -> int:
        with self.lock:
            return sum(1 for arrived in self.arrivals if arrived > moment)


@dataclass
class LoadRun:
    replicas: int
    seconds: float
    executions: Counter[int]
    counts: dict[str, int]
    workers_before: set[str]
    workers_after: set[str]
    sdk_exit_codes: list[int | None]
    managers_stopped: list[bool]
    listener: RoomListener
    listener_connected_at_end: bool

    @property
    def throughput(self) -> float:
        return TASKS / self.seconds

    def summary(self) -> str:
        return (
            f"stack load run: {self.replicas} server replica(s) behind the proxy, "
            f"{TASKS} tasks in {self.seconds:.1f} s = {self.throughput:.0f} tasks/s; "
            f"{len(self.listener.arrivals)} status events seen by the room listener "
            f"({self.listener.connects} connect(s))"
        )


def register(stack: Stack, name: str) -> str:
    """A fresh account's token (registration is on in the test stack)."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@stack.example.com"
    password = secrets.token_urlsafe(12)
    response = httpx.post(
        f"{stack.url}/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    return stack.login(email, password)


def room_workers(stack: Stack, token: str, room: str) -> set[str]:
    response = httpx.get(
        f"{stack.url}/v1/joblib/rooms/{room}/workers",
        params={"limit": 100},
        headers=bearer(token),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {str(worker["id"]) for worker in response.json()["items"]}


def room_counts(http: httpx.Client, room: str) -> dict[str, int]:
    response = http.get(f"/v1/joblib/rooms/{room}/stats")
    response.raise_for_status()
    counts: Counter[str] = Counter()
    for job in response.json()["jobs"]:
        counts.update(job["counts"])
    return dict(counts)


@contextmanager
def sdk_workers(stack: Stack, token: str, room: str, records: Path) -> Iterator[list[Any]]:
    command = [sys.executable, "-m", "jobserver_sdk", "worker", f"{__name__}:LoadEcho"]
    command += ["--url", stack.url, "--token", token, "--room", room]
    command += ["--concurrency", "8", "--log-level", "WARNING"]
    env = {**os.environ, RECORD_DIR: str(records)}
    processes = []
    with ExitStack() as logs:
        try:
            for index in range(SDK_WORKERS):
                log = logs.enter_context((records / f"sdk-worker-{index}.log").open("w"))
                processes.append(
                    subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
                )
            yield processes
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    process.kill()


@dataclass
class Manager:
    manager: JobManager
    sio: socketio.Client
    api: ApiManager
    executed: list[int] = field(default_factory=list)


@contextmanager
def job_managers(stack: Stack, token: str, room: str) -> Iterator[list[Manager]]:
    managers: list[Manager] = []
    try:
        for _ in range(MANAGERS):
            sio = socketio.Client(reconnection_delay=0.2, reconnection_delay_max=1.0)
            # Default transports: long-polling first, as zndraw-joblib's users connect.
            sio.connect(stack.url, auth={"token": token}, wait_timeout=10)
            api = ApiManager(stack.url, token)
            api.http = httpx.Client(timeout=30, transport=FencedReports())
            executed: list[int] = []

            def execute(task: ClaimedTask[Any], executed: list[int] = executed) -> None:
                executed.append(task.extension.n)

            manager = JobManager(
                api, wrap(sio), execute=execute, polling_interval=1.0, heartbeat_interval=5
            )
            managers.append(Manager(manager, sio, api, executed))
            manager.register(ManagedEcho, room=room)
        yield managers
    finally:
        for held in managers:
            held.manager.disconnect()
            held.sio.disconnect()
            held.api.close()


def submit_batch(http: httpx.Client, room: str, numbers: range) -> None:
    """Bulk submits with idempotency keys, so a batch whose answer was lost is resent."""
    by_job: dict[str, list[dict[str, Any]]] = {}
    for n in numbers:
        job = ManagedEcho.__name__ if n % MANAGER_EVERY == 0 else LoadEcho.__name__
        item = {"payload": {"n": n}, "idempotency_key": f"load-{n}"}
        by_job.setdefault(f"{room}:modifiers:{job}", []).append(item)
    for job_name, items in by_job.items():
        path = f"/v1/joblib/rooms/{room}/tasks/{job_name}/bulk"
        for _ in range(10):
            try:
                response = http.post(path, json={"items": items})
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            if response.status_code not in (502, 503, 504):
                assert response.status_code == 202, response.text
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"bulk submit to {job_name}: no answer after 10 tries")


def finished(counts: dict[str, int]) -> int:
    return sum(counts.get(status, 0) for status in ("completed", "failed", "cancelled"))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls through the proxy; a read lost with a dying replica counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.3)


def run_load(
    stack: Stack,
    records: Path,
    replicas: int,
    disruptions: dict[int, Callable[[], None]] | None = None,
) -> LoadRun:
    """The load run; `disruptions` maps a submitted-task count to what happens there
    (the submitter waits for it, the workers go on with the backlog)."""
    pending_disruptions = dict(sorted((disruptions or {}).items()))
    room = f"load-{uuid.uuid4().hex[:8]}"
    worker_token = register(stack, "load-worker")
    submitter_token = register(stack, "load-submitter")
    with ExitStack() as held:
        http = held.enter_context(
            httpx.Client(base_url=stack.url, headers=bearer(submitter_token), timeout=60)
        )
        listener = RoomListener(stack.url, submitter_token, room)
        listener.sio.connect(stack.url, auth={"token": submitter_token}, wait_timeout=10)
        held.callback(listener.sio.disconnect)
        processes = held.enter_context(sdk_workers(stack, worker_token, room, records))
        managers = held.enter_context(job_managers(stack, worker_token, room))
        wait_until(
            lambda: len(room_workers(stack, worker_token, room)) == SDK_WORKERS + MANAGERS,
            READY_TIMEOUT,
            "every worker registered",
        )
        workers_before = room_workers(stack, worker_token, room)

        started = time.monotonic()
        submitted = 0
        while submitted < TASKS:
            while pending_disruptions and submitted >= next(iter(pending_disruptions)):
                pending_disruptions.pop(next(iter(pending_disruptions)))()
            wait_until(
                lambda sent=submitted: sent - finished(room_counts(http, room)) < BACKLOG,
                FINISH_TIMEOUT,
                "the backlog drained",
            )
            submit_batch(http, room, range(submitted, min(submitted + BATCH, TASKS)))
            submitted = min(submitted + BATCH, TASKS)
        wait_until(lambda: finished(room_counts(http, room)) >= TASKS, FINISH_TIMEOUT, "every task")
        seconds = time.monotonic() - started
        listener_connected_at_end = listener.sio.connected
        counts = room_counts(http, room)
        workers_after = room_workers(stack, worker_token, room)
        sdk_exit_codes = [process.poll() for process in processes]
        managers_stopped = [held_manager.manager._stop.is_set() for held_manager in managers]
        executions: Counter[int] = Counter()
        for held_manager in managers:
            executions.update(held_manager.executed)
    for record in records.glob("sdk-*.txt"):
        executions.update(int(line) for line in record.read_text().split())
    return LoadRun(
        replicas=replicas,
        seconds=seconds,
        executions=executions,
        counts=counts,
        workers_before=workers_before,
        workers_after=workers_after,
        sdk_exit_codes=sdk_exit_codes,
        managers_stopped=managers_stopped,
        listener=listener,
        listener_connected_at_end=listener_connected_at_end,
    )


def assert_exactly_once_and_no_worker_lost(run: LoadRun) -> None:
    twice = {n: times for n, times in run.executions.items() if times > 1}
    never = set(range(TASKS)) - set(run.executions)
    assert not twice, f"tasks executed more than once: {sorted(twice.items())[:20]}"
    assert not never, f"{len(never)} tasks never executed: {sorted(never)[:20]}"
    assert run.counts.get("completed") == TASKS, run.counts
    assert run.sdk_exit_codes == [None] * SDK_WORKERS, run.sdk_exit_codes
    assert run.managers_stopped == [False] * MANAGERS
    assert run.workers_after == run.workers_before
