"""The API documentation in a real browser: Swagger UI and ReDoc render from the server's
own files alone (every other address is cut off, as offline) under their policy."""

from __future__ import annotations

import re

from playwright.async_api import ConsoleMessage, Page, Route, expect

RENDER_DEADLINE_MS = 15_000
THIRD_PARTY_LOAD = re.compile(r"^Loading the \w+ 'https://(?!127\.0\.0\.1)")


async def _open_offline(page: Page, served: str, path: str) -> tuple[list[str], list[str]]:
    """Go to the page with only the server reachable; the addresses cut off and the
    policy violations the console reported are filled in as the page runs."""
    outside: list[str] = []
    violations: list[str] = []

    async def only_the_server(route: Route) -> None:
        if route.request.url.startswith(served):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    await page.route("**/*", only_the_server)
    page.on("console", on_console)
    await page.goto(f"{served}{path}")
    return outside, violations


async def test_swagger_ui_renders_offline_under_its_policy(served: str, page: Page) -> None:
    outside, violations = await _open_offline(page, served, "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "jobserver", timeout=RENDER_DEADLINE_MS
    )
    await expect(page.locator(".opblock").first).to_be_visible()
    assert outside == []
    assert violations == []


async def test_redoc_renders_offline_under_its_policy(served: str, page: Page) -> None:
    outside, violations = await _open_offline(page, served, "/redoc")
    await expect(page.locator("h1").first).to_contain_text("jobserver", timeout=RENDER_DEADLINE_MS)
    await expect(page.get_by_text("Submit Task").first).to_be_attached()
    assert outside == []
    # ReDoc's sidebar shows its maker's logo from the maker's site: the policy stops that
    # load (the page works without it), and nothing else.
    assert all(THIRD_PARTY_LOAD.search(v) for v in violations), violations
