"""The error inbox in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import re
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


async def test_a_groups_tasks_link_lists_exactly_that_groups_tasks(
    served: str, page: Page, core: Core
) -> None:
    values, keys = await _failures(core)
    await user_with_token(core, "viewer2@example.com", "viewer")
    await browser_login(page, served, "viewer2@example.com")
    await page.goto(f"{served}/dashboard/failures")
    group = page.locator('[data-testid="failure-groups"] tr[data-group]', has_text="ValueError")
    await group.locator('a[data-action="open-group"]').click()
    await expect(page).to_have_url(re.compile(r"/dashboard/tasks\?fingerprint="))
    rows = page.locator("tr[data-task]")
    await expect(rows).to_have_count(len(values))
    listed = {await row.get_attribute("data-task") for row in await rows.all()}
    assert listed == set(values)
    assert not listed & set(keys)
