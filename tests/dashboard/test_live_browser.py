"""The live parts in a real browser: human times, the live indicator, and the job page
following the feed (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Page, Route, expect

from app.dashboard import routes
from app.state import Core
from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import browser_login, user_with_token

AGO = re.compile(r"^(just now|\d+ s ago)$")
# A stream ends (on purpose) every SHORT_STREAM_SECONDS: a cut is noticed at the next one.
SHORT_STREAM_SECONDS = 1.5
NOTICE_MS = 10_000
STREAMS = "**/dashboard/stream*"


@pytest.fixture
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "STREAM_SECONDS", SHORT_STREAM_SECONDS)


@pytest.fixture
async def tokyo(browser: Browser) -> AsyncIterator[Page]:
    """A reader whose local time is not UTC."""
    context = await browser.new_context(timezone_id="Asia/Tokyo", locale="en-US")
    yield await context.new_page()
    await context.close()


async def _cut(route: Route) -> None:
    await route.abort()


async def test_times_read_as_ago_with_the_local_time_on_hover(
    served: str, tokyo: Page, core: Core, api: Api
) -> None:
    headers = await user_with_token(core, "boss@example.com", "admin")
    await api.register(headers)
    task_id = (await api.submit(headers)).json()["id"]
    await browser_login(tokyo, served, "boss@example.com")
    await tokyo.goto(f"{served}/dashboard/tasks/{task_id}")
    created = tokyo.locator("dt:text-is('created') + dd time")
    await expect(created).to_have_text(AGO)
    await expect(created).to_have_attribute("title", re.compile(r"GMT\+9"))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", await created.get_attribute("datetime") or ""
    )


async def test_times_in_live_fragments_read_as_ago_too(served: str, page: Page, core: Core) -> None:
    await user_with_token(core, "viewer@example.com", "viewer")
    await browser_login(page, served, "viewer@example.com")
    await expect(page.get_by_test_id("live-state")).to_have_text("live")
    stamp = page.locator('[data-testid="generated-at"] time')
    first = await stamp.get_attribute("datetime")
    await expect(stamp).not_to_have_attribute("datetime", first or "")  # a new fragment
    await expect(stamp).to_have_text(AGO)


@pytest.mark.usefixtures("short_streams")
async def test_the_indicator_shows_reconnecting_while_the_stream_is_cut_and_live_after(
    served: str, page: Page, core: Core
) -> None:
    await user_with_token(core, "viewer@example.com", "viewer")
    await browser_login(page, served, "viewer@example.com")
    await page.goto(f"{served}/dashboard/tasks")
    badge = page.get_by_test_id("live-state")
    await expect(badge).to_have_text("live")
    await expect(badge).to_have_attribute("role", "status")
    await page.route(STREAMS, _cut)
    await expect(badge).to_have_text("reconnecting…", timeout=NOTICE_MS)
    await expect(badge).to_have_attribute("data-state", "reconnecting")
    await page.unroute(STREAMS, _cut)
    await expect(badge).to_have_text("live", timeout=NOTICE_MS)


@pytest.mark.usefixtures("short_streams")
async def test_the_indicator_shows_offline_after_a_long_silence(
    served: str, page: Page, core: Core
) -> None:
    await user_with_token(core, "viewer@example.com", "viewer")
    await page.clock.install()
    await browser_login(page, served, "viewer@example.com")
    badge = page.get_by_test_id("live-state")
    await expect(badge).to_have_text("live")
    await page.route(STREAMS, _cut)
    await expect(badge).to_have_text("reconnecting…", timeout=NOTICE_MS)
    await page.clock.fast_forward("01:00")
    await expect(badge).to_have_text("offline")


async def test_the_job_pages_numbers_and_chart_follow_the_feed_without_a_reload(
    served: str, page: Page, core: Core, api: Api
) -> None:
    headers = await user_with_token(core, "owner@example.com", "operator")
    worker = await api.register(headers)
    await browser_login(page, served, "owner@example.com")
    await page.goto(f"{served}/dashboard/jobs/{quote(JOB)}")
    await expect(page.get_by_test_id("live-state")).to_have_text("live")
    await page.evaluate("window.notReloaded = true")
    depth = page.locator('[data-field="queue-depth"]')
    await expect(depth).to_have_text("0")
    await api.submit(headers)
    await expect(depth).to_have_text("1")
    await expect(page.locator('[data-count="pending"]')).to_have_text("1")
    task = await api.claim(headers, worker)
    assert task is not None
    await api.patch(headers, task["id"], status="running")
    await api.patch(headers, task["id"], status="completed", result={})
    hour = page.locator('tr[data-window="last hour"] [data-field="completed"]')
    await expect(hour).to_have_text("1")
    await expect(depth).to_have_text("0")
    await expect(page.get_by_test_id("job-chart")).to_have_attribute("data-drawn-total", "1")
    assert await page.evaluate("window.notReloaded") is True
