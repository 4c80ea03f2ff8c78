"""Issue 18 on the dashboard: Secure cookies over HTTPS, sign-out and credential changes end
the cookie, sign-in throttled and hashed off the event loop."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.services import passwords
from app.services.users import get_by_email, revoke_tokens
from app.state import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.dashboard.conftest import SignIn, csrf_of, dashboard_login


def client_on(app: Any, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def test_session_cookie_is_secure_when_the_request_came_over_https(app: Any) -> None:
    async with client_on(app, "https://test") as http:
        response = await dashboard_login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert response.status_code == 303, response.text
        assert "secure" in response.headers["set-cookie"].lower()
    async with client_on(app, "http://test") as http:
        response = await dashboard_login(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert "secure" not in response.headers["set-cookie"].lower()


async def test_sign_out_ends_the_cookie(app: Any, sign_in: SignIn) -> None:
    http = await sign_in("operator")
    cookie = http.cookies["jobserver_session"]
    csrf = csrf_of((await http.get("/dashboard")).text)
    out = await http.post("/dashboard/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 303
    async with client_on(app, "http://test") as stolen:
        stolen.cookies.set("jobserver_session", cookie, path="/dashboard")
        response = await stolen.get("/dashboard")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"


async def test_a_revoked_users_cookie_stops_working(sign_in: SignIn, core: Core) -> None:
    http = await sign_in("operator")
    assert (await http.get("/dashboard")).status_code == 200
    async with core.sessionmaker() as session:
        user = await get_by_email(session, "operator-0@example.com")
        assert user is not None
        revoke_tokens(user)
        await session.commit()
    assert (await http.get("/dashboard")).status_code == 303


class TestThrottledSignIn:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"login_max_failures_per_account": 2, "login_failure_window_seconds": 60}

    async def test_dashboard_sign_in_is_throttled(self, client: httpx.AsyncClient) -> None:
        for _ in range(2):
            assert (await dashboard_login(client, ADMIN_EMAIL, "wrong")).status_code == 400
        response = await dashboard_login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert "jobserver_session" not in response.headers.get("set-cookie", "")


class ThreadRecordingHash(PasswordHash):
    def __init__(self) -> None:
        super().__init__((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
        self.threads: list[str] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.current_thread().name)
        return super().hash(password, salt=salt)

    def verify_and_update(
        self, password: str | bytes, hash: str | bytes
    ) -> tuple[bool, str | None]:
        self.threads.append(threading.current_thread().name)
        return super().verify_and_update(password, hash)


async def test_dashboard_sign_in_hashes_on_the_password_pool_also_for_unknown_emails(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ThreadRecordingHash()
    monkeypatch.setattr(passwords, "PASSWORDS", spy)
    assert (await dashboard_login(client, "nobody@example.com", "whatever")).status_code == 400
    assert (await dashboard_login(client, ADMIN_EMAIL, "wrong")).status_code == 400
    assert len(spy.threads) == 2
    assert all(name.startswith(passwords.THREAD_PREFIX) for name in spy.threads)
