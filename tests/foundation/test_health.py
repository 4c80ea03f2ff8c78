"""Health and readiness, and the rule that everything else needs a token (issue 2 §7)."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings
from tests.foundation.helpers import client_for, running
from tests.live import free_port

PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/v1/auth/jwt/login",
        "/v1/auth/register",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)
PATH_PARAM = re.compile(r"\{[^}]+\}")


def closed_port() -> int:
    """A local port nothing listens on (free_port: from this worker's block, which no other
    worker's servers use)."""
    return free_port()


async def test_health_is_200_without_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_200_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok"}


async def test_ready_is_200_with_redis_configured(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, redis_url=redis_url)
    async with running(settings) as application, client_for(application) as http:
        response = await http.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "redis": "ok"}


async def test_ready_is_503_problem_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nothing"
    application = create_app(make_settings(url, tmp_path))
    async with client_for(application) as http:
        response = await http.get("/ready")
        assert (await http.get("/health")).status_code == 200
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/v1/problems/not-ready"
    assert response.json()["detail"].startswith("Database unreachable")


async def test_ready_is_200_with_redis_degraded_when_redis_is_unreachable(
    tmp_path: Path,
) -> None:
    """Without Redis REST still works: a load balancer must keep the replica."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path,
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
    )
    application = create_app(settings)
    async with client_for(application) as http:
        response = await http.get("/ready")
    await application.state.core.redis.aclose()
    await application.state.core.engine.dispose()
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "redis": "degraded"}


async def test_every_other_route_needs_a_token(app: FastAPI, client: httpx.AsyncClient) -> None:
    # The OpenAPI document is the public list of routes (FastAPI includes routers lazily,
    # so app.routes does not show them flat).
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        concrete = PATH_PARAM.sub(str(uuid.uuid4()), path)
        for method in operations:
            response = await client.request(method.upper(), concrete)
            assert response.status_code == 401, f"{method} {path}: {response.status_code}"
            checked += 1
    assert checked >= 20


async def test_ready_is_503_problem_when_the_database_hangs(tmp_path: Path) -> None:
    # A listener that never accepts: the TCP handshake completes, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{silent.getsockname()[1]}/nothing"
        application = create_app(make_settings(url, tmp_path))
        async with client_for(application) as http:
            response = await http.get("/ready")
        await application.state.core.engine.dispose()
    assert response.status_code == 503
    assert response.json()["detail"] == "Database unreachable: TimeoutError"
