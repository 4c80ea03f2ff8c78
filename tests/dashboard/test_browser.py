"""The dashboard in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from app.state import Core
from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import browser_login, user_with_token

LIVE_DEADLINE_MS = 2000


async def _seed(api: Api, headers: dict[str, str]) -> tuple[str, list[str]]:
    worker = await api.register(headers)
    ids = [(await api.submit(headers, payload={"n": n})).json()["id"] for n in range(4)]
    return worker, ids


async def test_viewer_sees_the_same_numbers_as_the_stats_api(
    served: str, page: Page, core: Core, api: Api
) -> None:
    worker_h = await user_with_token(core, "worker@example.com", "operator")
    worker, _ = await _seed(api, worker_h)
    done = await api.claim(worker_h, worker)
    assert done is not None
    await api.patch(worker_h, done["id"], status="running")
    await api.patch(worker_h, done["id"], status="failed", error="boom: bad input")
    await user_with_token(core, "viewer@example.com", "viewer")
    await browser_login(page, served, "viewer@example.com")
    stats = (await api.client.get("/v1/joblib/stats", headers=worker_h)).json()
    counts = next(j for j in stats["jobs"] if j["job_name"] == JOB)["counts"]
    row = page.locator(f'tr[data-job="{JOB}"]')
    for status, count in counts.items():
        await expect(row.locator(f'td[data-status="{status}"]')).to_have_text(str(count))
    await expect(page.get_by_test_id("failures")).to_contain_text("boom: bad input")
    await expect(page.get_by_test_id("workers")).to_contain_text("worker@example.com")


async def test_a_submitted_task_appears_and_turns_completed_without_a_reload(
    served: str, page: Page, core: Core, api: Api
) -> None:
    worker_h = await user_with_token(core, "worker@example.com", "operator")
    worker = await api.register(worker_h)
    await user_with_token(core, "viewer@example.com", "viewer")
    await browser_login(page, served, "viewer@example.com")
    await expect(page.get_by_test_id("live-state")).to_have_text("live")
    await page.evaluate("window.notReloaded = true")
    task_id = (await api.submit(worker_h)).json()["id"]
    status = page.locator(f'[data-testid="recent"] tr[data-task="{task_id}"] [data-field="status"]')
    await expect(status).to_have_text("pending", timeout=LIVE_DEADLINE_MS)
    assert await api.claim(worker_h, worker) is not None
    await api.patch(worker_h, task_id, status="running")
    await api.patch(worker_h, task_id, status="completed")
    await expect(status).to_have_text("completed", timeout=LIVE_DEADLINE_MS)
    assert await page.evaluate("window.notReloaded") is True


async def test_an_operator_cancels_a_pending_task_with_a_click(
    served: str, page: Page, core: Core, api: Api
) -> None:
    operator_h = await user_with_token(core, "op@example.com", "operator")
    _, ids = await _seed(api, operator_h)
    await browser_login(page, served, "op@example.com")
    await page.click(f'button[data-action="cancel"][data-task="{ids[0]}"]')
    await expect(page.locator("#flash")).to_contain_text("cancelled")
    assert (await api.get(operator_h, ids[0]))["status"] == "cancelled"


async def test_a_viewer_has_no_action_buttons_and_its_cookie_gets_403(
    served: str, page: Page, core: Core, api: Api
) -> None:
    operator_h = await user_with_token(core, "op@example.com", "operator")
    _, ids = await _seed(api, operator_h)
    await user_with_token(core, "viewer@example.com", "viewer")
    await browser_login(page, served, "viewer@example.com")
    await expect(page.locator(f'tr[data-task="{ids[0]}"]').first).to_be_visible()
    await expect(page.locator("button.act")).to_have_count(0)
    csrf = await page.get_attribute('meta[name="csrf-token"]', "content")
    response = await page.request.post(
        f"{served}/dashboard/tasks/{ids[0]}/cancel", headers={"X-CSRF-Token": csrf or ""}
    )
    assert response.status == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.get(operator_h, ids[0]))["status"] == "pending"


async def test_a_state_change_without_the_csrf_token_is_refused(
    served: str, page: Page, core: Core, api: Api
) -> None:
    operator_h = await user_with_token(core, "op@example.com", "operator")
    _, ids = await _seed(api, operator_h)
    await browser_login(page, served, "op@example.com")
    response = await page.request.post(f"{served}/dashboard/tasks/{ids[0]}/cancel")
    assert response.status == 403
    assert re.search("CSRF", (await response.json())["detail"])
    assert (await api.get(operator_h, ids[0]))["status"] == "pending"
