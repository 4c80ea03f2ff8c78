"""Every dashboard page, as the router lists them, in a real browser: nothing is loaded
from another origin and nothing is reported on the console."""

from __future__ import annotations

from typing import Any

from playwright.async_api import ConsoleMessage, Page, Request, expect

from app.dashboard import sitemap
from app.state import Core
from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import browser_login, user_with_token

SIGNED_OUT = {"/dashboard/login"}


async def examples(api: Api, core: Core) -> dict[str, str]:
    """A value for each path parameter of a page: a job with a failed task."""
    headers = await user_with_token(core, "boss@example.com", "admin")
    task = await api.failed_task(headers, "ValueError: bad input")
    return {"task_id": task["id"], "job_name": JOB}


def test_the_page_list_comes_from_the_router(app: Any) -> None:
    paths = sitemap.pages(app)
    assert {"/dashboard", "/dashboard/login", "/dashboard/jobs/{job_name}"} <= set(paths)
    assert "/dashboard/stream" not in paths


async def test_every_page_loads_only_from_the_server_without_console_errors(
    served: str, page: Page, core: Core, api: Api, app: Any
) -> None:
    values = await examples(api, core)
    paths = [sitemap.fill(path, values) for path in sitemap.pages(app)]
    elsewhere: list[str] = []
    complaints: list[str] = []

    def on_request(request: Request) -> None:
        if not request.url.startswith(f"{served}/") and not request.url.startswith("data:"):
            elsewhere.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            complaints.append(f"{page.url}: {message.text}")

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: complaints.append(f"{page.url}: {error}"))
    for path in SIGNED_OUT:
        response = await page.goto(f"{served}{path}")
        assert response is not None
        assert response.ok, path
    await browser_login(page, served, "boss@example.com")
    for path in paths:
        if path in SIGNED_OUT:
            continue
        response = await page.goto(f"{served}{path}")
        assert response is not None
        assert response.ok, path
        # The page's scripts ran and its live stream answered.
        await expect(page.get_by_test_id("live-state")).to_have_text("live")
    assert len(paths) >= 7, paths
    assert elsewhere == []
    assert complaints == []
