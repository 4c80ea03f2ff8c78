"""Dashboard helpers: users with a known password and a signed-in cookie client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from app.state import Core
from tests.beyond.conftest import api
from tests.factories import make_user

__all__ = ["api"]
PASSWORD = "password"
SignIn = Callable[[str], Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
async def sign_in(app: Any, core: Core) -> AsyncIterator[SignIn]:
    """sign_in(role) -> a client holding a dashboard session of a new user with that role."""
    clients: list[httpx.AsyncClient] = []

    async def make(role: str) -> httpx.AsyncClient:
        email = f"{role}-{len(clients)}@example.com"
        async with core.sessionmaker() as session:
            await make_user(session, email, role=role, password=PASSWORD)
            await session.commit()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(http)
        response = await http.post("/dashboard/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 303, response.text
        return http

    yield make
    for http in clients:
        await http.aclose()
