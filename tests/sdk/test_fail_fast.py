"""The SDK fails fast and says why: a malformed URL is refused at construction, a server
that cannot be reached is an error within 5 s naming the URL and the cause, a refused
token stops a worker with a one-line hint, and the worker command ends in one line, not a
traceback (the live-server tests run on both backends)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from jobserver_sdk import (
    Forbidden,
    JobService,
    ServerUnreachable,
    SyncJobService,
    TokenRejected,
    Worker,
)
from jobserver_sdk.client import CONNECT_SECONDS, SyncClient, check_url, connect_cause

from tests.live import free_port
from tests.sdk.conftest import Server
from tests.sdk.helpers import wait_for_job, workers
from tests.sdk.jobs import SayHello

ROOT = Path(__file__).resolve().parents[2]
# The bound the SDK promises, plus room for a loaded machine to schedule the test.
FAIL_WITHIN = CONNECT_SECONDS + 3


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8000", "localhost", "ftp://127.0.0.1:8000", "http://", "http://:8000"]
)
def test_a_malformed_url_is_refused_at_construction_naming_it(url: str) -> None:
    for make in (
        lambda: JobService(url, "token", room="demo"),
        lambda: Worker(url, "token", [SayHello], room="demo"),
        lambda: SyncJobService(url, "token", room="demo"),
    ):
        with pytest.raises(ValueError, match="jobserver URL") as refused:
            make()
        assert repr(url) in str(refused.value)


def test_a_well_formed_url_loses_its_trailing_slash() -> None:
    assert check_url("https://jobs.example.com/") == "https://jobs.example.com"


def test_a_url_without_a_port_says_which_port_was_tried() -> None:
    cause = connect_cause(ConnectionRefusedError(111, "Connection refused"), "http://127.0.0.1")
    assert "names no port, so 80 was tried" in cause


async def test_an_unreachable_server_fails_a_submit_within_5_s_naming_url_and_cause() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    async with JobService(url, "token", room="demo") as service:
        with pytest.raises(ServerUnreachable) as unreachable:
            await service.submit(SayHello())
    assert time.monotonic() - started < FAIL_WITHIN
    assert (unreachable.value.url, unreachable.value.cause) == (url, "Connection refused")
    assert str(unreachable.value) == f"cannot reach the jobserver at {url}: Connection refused"


def test_an_unreachable_server_fails_a_blocking_request_within_5_s() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with SyncClient(url, "token") as client, pytest.raises(ServerUnreachable) as unreachable:
        client.request("GET", "/v1/joblib/workers", retry_seconds=300)
    assert time.monotonic() - started < FAIL_WITHIN
    assert unreachable.value.cause == "Connection refused"


async def test_a_worker_that_cannot_reach_its_server_raises_within_5_s() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    worker = Worker(url, "token", [SayHello], room="demo", handle_signals=False)
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match=url):
        await worker.run()
    assert time.monotonic() - started < FAIL_WITHIN


def worker_command(url: str, token: str, room: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jobserver_sdk",
        "worker",
        "tests.sdk.jobs:SayHello",
        "--room",
        room,
        "--url",
        url,
        "--token",
        token,
    ]


async def run_to_end(command: list[str], within: float = 60) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(within):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_the_worker_command_ends_in_one_line_when_the_server_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, stderr = await run_to_end(worker_command(url, "token", "demo"))
    assert code == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"jobserver_sdk worker: cannot reach the jobserver at {url}: Connection refused"
    )


async def test_the_worker_command_ends_in_one_line_on_a_malformed_url() -> None:
    code, stderr = await run_to_end(worker_command("127.0.0.1:8000", "token", "demo"))
    assert code == 1
    assert stderr.strip().splitlines() == [
        "jobserver_sdk worker: jobserver URL '127.0.0.1:8000' needs a scheme and a host, "
        "e.g. http://127.0.0.1:8000"
    ]


def revoke(server: Server, token: str) -> None:
    """Log the token's user out: every token of that account stops working (401)."""
    response = httpx.post(
        f"{server.url}/v1/auth/jwt/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 204, response.text


@pytest.mark.slow
async def test_a_revoked_token_stops_the_worker_with_a_hint(server: Server, room: str) -> None:
    token = await asyncio.to_thread(server.live.register_user, f"{uuid.uuid4().hex}@example.com")
    worker = Worker(server.url, token, [SayHello], room, handle_signals=False, grace_seconds=5)
    run = asyncio.create_task(worker.run())
    async with asyncio.timeout(20):
        await worker.ready.wait()
    await asyncio.to_thread(revoke, server, token)
    with pytest.raises(TokenRejected) as rejected:
        async with asyncio.timeout(30):  # the next claim poll (5 s) or heartbeat says 401
            await run
    message = str(rejected.value)
    assert message.startswith(f"token rejected by {server.url}")
    assert "expired or was revoked; make a new one with `jobserver token EMAIL`" in message


@pytest.mark.slow
async def test_the_worker_command_ends_in_one_line_and_exit_code_1_on_a_revoked_token(
    server: Server, room: str
) -> None:
    token = await asyncio.to_thread(server.live.register_user, f"{uuid.uuid4().hex}@example.com")
    ended = asyncio.create_task(run_to_end(worker_command(server.url, token, room)))
    async with JobService(server.url, server.token, room=room) as service:
        await wait_for_job(service, SayHello)
    await asyncio.to_thread(revoke, server, token)
    code, stderr = await ended
    assert code == 1
    assert "Traceback" not in stderr
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(f"jobserver_sdk worker: token rejected by {server.url}")
    )


@pytest.mark.slow
async def test_a_worker_of_an_ordinary_user_in_global_is_refused_with_what_to_do(
    server: Server,
) -> None:
    token = await asyncio.to_thread(server.live.register_user, f"{uuid.uuid4().hex}@example.com")
    worker = Worker(server.url, token, [SayHello], "@global", handle_signals=False)
    with pytest.raises(Forbidden) as refused:
        await worker.run()
    assert refused.value.status == 403
    assert "needs an admin's token" in refused.value.detail
    assert 'room="demo"' in refused.value.detail


@pytest.mark.slow
async def test_an_ordinary_users_submit_to_an_undeclared_global_job_says_what_to_do(
    server: Server,
) -> None:
    token = await asyncio.to_thread(server.live.register_user, f"{uuid.uuid4().hex}@example.com")
    async with JobService(server.url, token) as service:  # the default room: @global
        with pytest.raises(Exception, match="needs an admin's token; use a room of your own"):
            await service.submit(SayHello())


@pytest.mark.slow
async def test_a_worker_with_a_valid_token_is_not_stopped(server: Server, room: str) -> None:
    """The control: an ordinary user's worker in its own room runs tasks."""
    token = await asyncio.to_thread(server.live.register_user, f"{uuid.uuid4().hex}@example.com")
    async with (
        JobService(server.url, token, room=room) as service,
        workers(server.url, token, room, [SayHello]),
    ):
        task = await service.submit(SayHello(who="ok"))
        assert await task.result(timeout=20) == {"greeted": "ok"}
