"""@internal jobs on every shared broker (Redis, RabbitMQ, NATS JetStream, SQS): a real
`jobserver worker` subprocess runs them with the same semantics (§2).

One server, one database and one worker per (broker, database) for the whole module: the
tests run in order and the last one kills the worker. SQS is moto's server mode, a real
SQS HTTP API on 127.0.0.1. JOBSERVER_TEST_WORKER_CONCURRENCY (default 2) sets the worker's
processes; run with `-s` to see each broker's 50-task time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.main import create_app
from app.realtime.fanout import CHANNEL as FANOUT_CHANNEL
from app.services.tasks.transitions import INTERNAL_TIMEOUT
from app.state import Core
from tests.background.processes import start_worker, stop
from tests.background.test_internal import submit, wait_terminal
from tests.conftest import (
    BACKENDS,
    REDIS_URL,
    Templates,
    _service_missing,
    clone_pg,
    drop_pg,
    headers_for,
    make_settings,
)

pytestmark = pytest.mark.slow

BROKERS = ("redis", "amqp", "nats", "sqs")
ECHO = "@internal:modifiers:Echo"
SLEEP = "@internal:modifiers:Sleep"
MARK = "@internal:analysis:Mark"
EXTENSIONS = (
    "app.internal.examples:Echo,app.internal.examples:Sleep,tests.background.extensions:Mark"
)
AMQP_URL = os.environ.get("JOBSERVER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("JOBSERVER_TEST_NATS_URL", "nats://127.0.0.1:4222")
CONCURRENCY = os.environ.get("JOBSERVER_TEST_WORKER_CONCURRENCY", "2")
# moto accepts any credentials; real AWS would take them from the standard chain.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


async def make_sqs_queue(endpoint: str, name: str) -> None:
    from aiobotocore.session import get_session

    client_args: Any = {"region_name": "us-east-1", "endpoint_url": endpoint}
    async with get_session().create_client("sqs", **client_args) as sqs:
        await sqs.create_queue(QueueName=name)


async def reachable(url: str) -> None:
    """The broker is up, or the test is skipped (failed under REQUIRE_SERVICES)."""
    from app.errors import StartupRefused
    from app.internal.broker_urls import probe

    try:
        await probe(url)
    except StartupRefused as exc:
        _service_missing(url.partition("://")[0], str(exc))


@pytest.fixture(scope="module", params=BROKERS)
async def broker_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A queue of this module's own on the broker, so parallel runs never share one."""
    name = f"jobserver-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    kind = str(request.param)
    with pytest.MonkeyPatch.context() as env:
        for key, value in AWS_ENV.items():
            env.setenv(key, value)
        if kind == "redis":
            url = REDIS_URL
        elif kind == "amqp":
            url = f"{AMQP_URL}?queue={name}"
        elif kind == "nats":
            url = f"{NATS_URL}?queue={name}"
        else:
            endpoint = request.getfixturevalue("moto_endpoint")
            await make_sqs_queue(endpoint, name)
            url = f"sqs://{name}?region=us-east-1&endpoint_url={endpoint}"
        await reachable(url)
        yield url
        await drop_queue(kind, name)


async def drop_queue(kind: str, name: str) -> None:
    """Best effort: the test's durable queue or stream does not outlive the run."""
    with contextlib.suppress(Exception):
        if kind == "amqp":
            import aio_pika

            connection = await aio_pika.connect(AMQP_URL)
            async with connection:
                channel = await connection.channel()
                for queue in (name, f"{name}.dead"):
                    await channel.queue_delete(queue)
        elif kind == "nats":
            import nats

            client = await nats.connect(NATS_URL)
            await client.jetstream().delete_stream(name)
            await client.close()


@dataclass
class Stack:
    """The in-process server and the worker subprocess of one (broker, database)."""

    broker: str
    core: Core
    client: httpx.AsyncClient
    headers: dict[str, str]
    worker: subprocess.Popen[bytes]
    directory: Path


@pytest.fixture(scope="module", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest,
    templates: Templates,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template, for the module."""
    if request.param == "sqlite":
        assert templates.sqlite_file is not None
        target = tmp_path_factory.mktemp("db") / "jobserver.db"
        shutil.copyfile(templates.sqlite_file, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = await clone_pg(templates)
    try:
        yield url
    finally:
        drop_pg(templates, url)


@pytest.fixture(scope="module")
async def stack(
    broker_url: str, database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    except Exception as exc:
        await redis.aclose()
        _service_missing("Redis", f"{type(exc).__name__}: {exc}")
    directory = tmp_path_factory.mktemp("stack")
    # The leader's repair pass runs too: a message lost between commit and broker is
    # re-sent, and every task must still finish.
    settings = make_settings(
        database,
        directory / "data",
        redis_url=REDIS_URL,
        broker_url=broker_url,
        internal_extensions=EXTENSIONS,
        background_enabled=True,
        sweeper_interval_seconds=0.5,
        internal_dispatch_grace_seconds=3,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_")}
    env.update(
        AWS_ENV,
        JOBSERVER_DATABASE_URL=database,
        JOBSERVER_REDIS_URL=REDIS_URL,
        JOBSERVER_BROKER_URL=broker_url,
        JOBSERVER_INTERNAL_EXTENSIONS=EXTENSIONS,
        JOBSERVER_DATA_DIR=str(directory / "worker-data"),
        JOBSERVER_LOG_LEVEL="warning",
    )
    app = create_app(settings)
    log = (directory / "worker.log").open("ab")
    worker = start_worker(env, log, CONCURRENCY)
    try:
        async with app.router.lifespan_context(app):
            core: Core = app.state.core
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                email = f"user-{uuid.uuid4().hex[:8]}@example.com"
                headers = await headers_for(client, core, email, "operator")
                yield Stack(broker_url.partition(":")[0], core, client, headers, worker, directory)
    finally:
        stop(worker, signal.SIGTERM)
        log.close()
        await redis.flushdb()
        await redis.aclose()


async def test_worker_process_completes_50_internal_tasks(stack: Stack) -> None:
    # One task first: the time of the 50 is then the broker's, not the worker's start.
    warm_up = await submit(stack.client, stack.headers, ECHO, {})
    assert (await wait_terminal(stack.client, stack.headers, warm_up))["status"] == "completed"
    redis = Redis.from_url(REDIS_URL)
    async with redis.pubsub() as socketio_fanout:
        await socketio_fanout.subscribe(FANOUT_CHANNEL)
        started = time.perf_counter()
        ids = [
            await submit(stack.client, stack.headers, ECHO, {"message": str(i)}) for i in range(50)
        ]
        finished = await asyncio.gather(
            *(wait_terminal(stack.client, stack.headers, i) for i in ids)
        )
        elapsed = time.perf_counter() - started
        assert [body["status"] for body in finished] == ["completed"] * 50
        assert all(body["started_at"] is not None for body in finished)
        # The worker's events reach every replica's sockets and long-polls through Redis.
        seen = b""
        while (message := await socketio_fanout.get_message(timeout=1)) is not None:
            seen += message["data"] if isinstance(message["data"], bytes) else b""
    await redis.aclose()
    assert b"task_status_event" in seen
    assert ids[-1].encode() in seen
    print(f"\n{stack.broker}: 50 tasks in {elapsed:.2f} s = {50 / elapsed:.0f} tasks/s")


async def test_duplicated_message_runs_the_extension_once(stack: Stack) -> None:
    marks = stack.directory / "marks.log"
    payload = {"path": str(marks)}
    task_id = await submit(stack.client, stack.headers, MARK, payload)
    # The same message twice more, as a broker redelivery or a repair pass would send it.
    handle = stack.core.publisher.dispatcher.handles[MARK]  # type: ignore[union-attr]
    for _ in range(2):
        await handle.kiq(task_id=task_id, room_id="r1", payload=payload)
    assert (await wait_terminal(stack.client, stack.headers, task_id))["status"] == "completed"
    await asyncio.sleep(1.5)  # time for the duplicates to be taken and dropped
    assert marks.read_text().split() == [task_id]


async def test_killed_worker_leaves_its_task_to_the_stuck_task_rule(stack: Stack) -> None:
    client, headers, core = stack.client, stack.headers, stack.core
    task_id = await submit(client, headers, SLEEP, {"seconds": 60})
    for _ in range(300):
        response = await client.get(f"/v1/joblib/tasks/{task_id}", headers=headers)
        if response.json()["status"] == "running":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the worker never started the task")
    stop(stack.worker, signal.SIGKILL)
    assert await core.store.take_lost_dispatches(0) == []  # it did start
    await core.tasks.fail_stuck_internal(3600)
    assert (await core.store.get(task_id)).task.status == "running"  # type: ignore[union-attr]
    await core.tasks.fail_stuck_internal(0)
    task = (await core.store.get(task_id)).task  # type: ignore[union-attr]
    assert (task.status, task.error) == ("failed", INTERNAL_TIMEOUT)
