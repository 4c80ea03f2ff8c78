"""Dependencies failing under a running server: PostgreSQL dropping every connection, Redis
hanging or gone (through a TCP proxy in front of the machine's Redis, never stopping it)."""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.db.asyncpg_args import asyncpg_connect_args
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, bearer, login, make_settings
from tests.contract.conftest import JOBLIB, register, submit
from tests.foundation.helpers import client_for, running
from tests.tcp_proxy import TcpProxy

# What a hung Redis may cost a request: one 1 s socket timeout, plus margin.
REDIS_HANG_BUDGET = 1.5
TERMINATE_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)

Request = Callable[[httpx.AsyncClient, dict[str, str], dict[str, str]], Awaitable[httpx.Response]]


async def drop_every_connection(database_url: str) -> int:
    """What a PostgreSQL restart or failover does to the app's pooled connections."""
    connection = await asyncpg.connect(**asyncpg_connect_args(database_url))
    try:
        return int(await connection.fetchval(TERMINATE_OTHERS))
    finally:
        await connection.close()


# Each request runs right after every database connection was dropped; `ids` carries what
# earlier requests created (the worker, the task).
REQUESTS: dict[str, Request] = {
    "list workers": lambda c, h, _: c.get(f"{JOBLIB}/workers", headers=h),
    "register a job": lambda c, h, _: register(c, h),
    "submit a task": lambda c, h, _: submit(c, h),
    "claim": lambda c, h, ids: c.post(
        f"{JOBLIB}/tasks/claim", json={"worker_id": ids["worker"]}, headers=h
    ),
    "read a task": lambda c, h, ids: c.get(f"{JOBLIB}/tasks/{ids['task']}", headers=h),
    "list tasks": lambda c, h, _: c.get(f"{JOBLIB}/rooms/r1/tasks", headers=h),
    "who am I": lambda c, h, _: c.get("/v1/auth/users/me", headers=h),
    "ready": lambda c, h, _: c.get("/ready"),
}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_no_request_fails_after_the_database_dropped_its_connections(
    client: httpx.AsyncClient, user_headers: dict[str, str], database_url: str
) -> None:
    registered = await register(client, user_headers)
    ids = {"worker": registered.json()["worker_id"]}
    ids["task"] = (await submit(client, user_headers)).json()["id"]
    for name, request in REQUESTS.items():
        assert await drop_every_connection(database_url) > 0, name
        response = await request(client, user_headers, ids)
        assert response.status_code < 500, f"{name}: {response.status_code} {response.text}"


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    target = make_url(redis_url)
    with TcpProxy(target.host or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy


@pytest.fixture
def redis_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings of the app in `redis_app_client`; parametrize indirectly to change them."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return overrides


@pytest.fixture
async def redis_app_client(
    database_url: str,
    redis_url: str,
    redis_proxy: TcpProxy,
    redis_overrides: dict[str, Any],
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on Redis through the proxy (up while it starts)."""
    proxied = make_url(redis_url).set(port=redis_proxy.port).render_as_string()
    settings = make_settings(database_url, tmp_path, redis_url=proxied, **redis_overrides)
    async with running(settings) as application, client_for(application) as http:
        yield http
    # python-socketio's Redis manager replaces its Redis client after a failed publish
    # without closing the old one; collect those now, while their warnings can be told
    # apart from a leak of ours.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed", ResourceWarning)
        gc.collect()


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await request
    return response, time.monotonic() - start


@pytest.mark.parametrize("failure", ["freeze", "cut"])
async def test_ready_reports_redis_degraded_while_the_database_answers(
    redis_app_client: httpx.AsyncClient, redis_proxy: TcpProxy, failure: str
) -> None:
    assert (await redis_app_client.get("/ready")).json()["redis"] == "ok"
    getattr(redis_proxy, failure)()
    response, took = await timed(redis_app_client.get("/ready"))
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "redis": "degraded"}
    assert took < REDIS_HANG_BUDGET
    redis_proxy.resume()
    assert (await redis_app_client.get("/ready")).json()["redis"] == "ok"


async def test_a_hung_redis_does_not_slow_database_reads(
    redis_app_client: httpx.AsyncClient, redis_proxy: TcpProxy
) -> None:
    headers = bearer(await login(redis_app_client, ADMIN_EMAIL, ADMIN_PASSWORD))
    assert (await register(redis_app_client, headers)).status_code == 201
    redis_proxy.freeze()
    for request in (
        redis_app_client.get(f"{JOBLIB}/workers", headers=headers),
        redis_app_client.get(f"{JOBLIB}/rooms/r1/tasks", headers=headers),
    ):
        response, took = await timed(request)
        assert response.status_code == 200, response.text
        assert took < REDIS_HANG_BUDGET


@pytest.mark.parametrize(
    "redis_overrides",
    [{"redis_socket_timeout_seconds": 0.2, "redis_connect_timeout_seconds": 0.2}],
    indirect=True,
)
async def test_a_hung_redis_costs_a_write_its_redis_calls_timeouts(
    redis_app_client: httpx.AsyncClient, redis_proxy: TcpProxy
) -> None:
    """A write publishes its events through Redis after commit: each Redis call it makes
    waits one timeout at most, then the request answers (the events are lost, the write
    is not). Without timeouts each call waited 5 s and a report took 10 to 15 s."""
    http = redis_app_client
    headers = bearer(await login(http, ADMIN_EMAIL, ADMIN_PASSWORD))
    worker_id = (await register(http, headers)).json()["worker_id"]
    redis_proxy.freeze()
    response, took = await timed(submit(http, headers))
    assert response.status_code == 202, response.text
    assert took < REDIS_HANG_BUDGET
    claim = http.post(f"{JOBLIB}/tasks/claim", json={"worker_id": worker_id}, headers=headers)
    response, took = await timed(claim)
    assert response.status_code == 200, response.text
    assert took < REDIS_HANG_BUDGET
    task_id = response.json()["task"]["id"]
    for status in ("running", "completed"):
        report = http.patch(f"{JOBLIB}/tasks/{task_id}", json={"status": status}, headers=headers)
        response, took = await timed(report)
        assert response.status_code == 200, response.text
        assert took < REDIS_HANG_BUDGET
