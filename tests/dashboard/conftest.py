"""Dashboard helpers: users with a known password and a signed-in cookie client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from app.services import tokens
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
        response = await dashboard_login(http, email, PASSWORD)
        assert response.status_code == 303, response.text
        return http

    yield make
    for http in clients:
        await http.aclose()


@pytest.fixture
async def served(app: Any) -> AsyncIterator[str]:
    """The test's app on a real port (uvicorn in this event loop): SSE streams and the
    browser need a real server, and the test keeps its hands on the app's engine."""
    import asyncio

    import uvicorn

    from tests.live import free_port

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  # uvicorn offers a flag, no event
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    # Streams end when the feed closes; then uvicorn stops without waiting on them.
    await app.state.core.dashboard_feed.close()
    server.should_exit = True
    await task


ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's outcome on the item, for the screenshot-on-failure fixture."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright (no browser download exists here)."""
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield found
        await found.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) per test; a screenshot when the test fails."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    found = await context.new_page()
    yield found
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        await found.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    await context.close()


async def browser_login(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/dashboard")
    assert page.url.endswith("/dashboard/login")
    await page.fill('input[name="email"]', email)
    await page.fill('input[name="password"]', password)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"{base}/dashboard")


async def user_with_token(core: Core, email: str, role: str) -> dict[str, str]:
    """A user who signs in with PASSWORD, and API headers for them (token minted directly)."""
    async with core.sessionmaker() as session:
        user = await make_user(session, email, role=role, password=PASSWORD)
        await session.commit()
    token = tokens.mint(user.id, core.secret, 3600)
    return {"Authorization": f"Bearer {token}"}


LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def dashboard_login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Sign in as a browser does: fetch the form (its CSRF token and cookie), then post it."""
    form = await http.get("/dashboard/login")
    match = LOGIN_CSRF.search(form.text)
    assert match is not None, form.text
    data = {"email": email, "password": password, "csrf_token": match.group(1)}
    return await http.post("/dashboard/login", data=data)
