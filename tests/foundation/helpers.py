"""Starting and stopping an app outside the `app` fixture, for start-up rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings


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
