"""The job page in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

from urllib.parse import quote

from playwright.async_api import Page, expect

from app.state import Core
from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import browser_login, user_with_token


async def test_the_job_page_draws_its_chart_and_its_registrant_pauses_and_resumes_the_job(
    served: str, page: Page, core: Core, api: Api
) -> None:
    owner_h = await user_with_token(core, "owner@example.com", "operator")
    await api.register(owner_h)
    await api.submit(owner_h, payload={"n": 1})
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Security Policy" in m.text else None)
    await browser_login(page, served, "owner@example.com")
    await page.click(f'a[href="/dashboard/jobs/{quote(JOB)}"]')
    await page.wait_for_url(f"{served}/dashboard/jobs/{quote(JOB)}")
    chart = page.locator('[data-testid="job-chart"]')
    await expect(chart).to_have_attribute("data-drawn", "1")
    await expect(chart.locator("canvas")).to_have_count(1)
    assert (await chart.locator("canvas").bounding_box() or {}).get("width", 0) > 0
    await page.click('button[data-action="pause"]')
    await expect(page.locator('[data-field="paused"]')).to_be_visible()
    await page.click('button[data-action="resume"]')
    await expect(page.locator('button[data-action="pause"]')).to_be_visible()
    await expect(page.locator('[data-field="paused"]')).to_have_count(0)
    assert refused == []  # nothing refused by the content security policy


async def test_the_overviews_per_job_chart_follows_the_live_feed(
    served: str, page: Page, core: Core, api: Api
) -> None:
    owner_h = await user_with_token(core, "owner@example.com", "operator")
    worker = await api.register(owner_h)
    await api.submit(owner_h, payload={"n": 1})
    await browser_login(page, served, "owner@example.com")
    cell = page.locator(f'[data-spark="{JOB}"]')
    await expect(cell.locator("canvas")).to_have_count(1)
    await expect(cell).to_have_attribute("data-drawn", ",".join(["0"] * 15))
    task = await api.claim(owner_h, worker)
    assert task is not None
    await api.patch(owner_h, task["id"], status="running")
    await api.patch(owner_h, task["id"], status="completed", result={})
    await expect(cell).to_have_attribute("data-drawn", ",".join(["0"] * 14 + ["1"]))
    await expect(cell.locator("canvas")).to_have_count(1)  # the same chart, moved and fed
