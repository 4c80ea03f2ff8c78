"""The Tasks view in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect
from sqlalchemy import select

from app.dashboard.tasks_view import PAGE_SIZE
from app.db.models import Task, User
from app.state import Core
from tests.dashboard.conftest import browser_login, user_with_token
from tests.factories import make_job, make_task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_an_operator_filters_pages_and_bulk_retries_two_failed_tasks(
    served: str, page: Page, core: Core
) -> None:
    await user_with_token(core, "op@example.com", "operator")
    async with core.sessionmaker() as db:
        owner = (await db.scalars(select(User).where(User.email == "op@example.com"))).one()
        job = await make_job(db)
        for i in range(PAGE_SIZE * 2):
            await make_task(
                db,
                job,
                status="failed" if i % 4 else "pending",
                created_at=T0 + timedelta(seconds=i),
                created_by=owner.id,
            )
        await db.commit()
    await browser_login(page, served, "op@example.com")
    await page.get_by_test_id("nav-tasks").click()
    await page.select_option('select[name="status"]', "failed")
    await page.get_by_test_id("apply-filters").click()
    rows = page.locator('[data-testid="task-list"] tbody tr[data-task]')
    await expect(rows).to_have_count(PAGE_SIZE)
    await expect(page.locator('tr[data-status="pending"]')).to_have_count(0)
    await page.get_by_test_id("next-page").click()
    await expect(rows.first).to_be_visible()
    chosen = [await rows.nth(i).get_attribute("data-task") for i in (0, 1)]
    for task_id in chosen:
        await page.check(f'input.pick[value="{task_id}"]')
    await page.get_by_test_id("bulk-retry").click()
    await expect(page.locator("#flash")).to_contain_text("retry: 2 of 2 done")
    async with core.sessionmaker() as db:
        ids = [uuid.UUID(str(task_id)) for task_id in chosen]
        found = await db.scalars(select(Task.status).where(Task.id.in_(ids)))
        assert list(found) == ["pending", "pending"]
