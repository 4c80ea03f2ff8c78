"""The error inbox in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from app.state import Core
from tests.dashboard.conftest import browser_login, user_with_token
from tests.dashboard.test_inbox import _failures


async def test_an_admin_retries_a_failure_group_with_a_click(
    served: str, page: Page, core: Core
) -> None:
    await _failures(core)
    await user_with_token(core, "admin2@example.com", "admin")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await browser_login(page, served, "admin2@example.com")
    await page.goto(f"{served}/dashboard/failures")
    groups = page.locator('[data-testid="failure-groups"] tr[data-group]')
    await expect(groups).to_have_count(2)
    await groups.first.locator('button[data-action="retry-all"]').click()
    await expect(page.locator('[data-testid="retried"]')).to_contain_text("Retried 2")
    await expect(groups).to_have_count(1)
    origin = urlsplit(served).netloc
    assert all(urlsplit(url).netloc == origin for url in requested), requested
