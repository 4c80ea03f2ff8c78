"""Shared by the foundation tests: an app outside the `app` fixture, problem checks, users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from app.db.models import User
from app.main import create_app
from app.settings import Settings
from app.state import Core


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    """create_app plus its lifespan: what `jobserver serve` does at start and stop."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def client_for(
    application: FastAPI, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def try_login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/v1/auth/jwt/login", data={"username": email, "password": password})


PROBLEM_JSON = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, detail: Any = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    if detail is not None:
        assert body["detail"] == detail


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/v1/auth/users/me", headers=headers)


async def user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    found: str = (await me(client, headers)).json()["id"]
    return found


async def deactivate(core: Core, email: str) -> None:
    async with core.sessionmaker() as session:
        await session.execute(update(User).where(User.email == email).values(is_active=False))
        await session.commit()
