"""The Run form in a real browser (Playwright driving Debian's Chromium): fields built from
the schema, a refused value shown beside its field, then a task followed until it ends."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote, urlsplit

import httpx
from playwright.async_api import Locator, Page, expect
from sqlalchemy import func, select

from app.db.models import Task
from app.state import Core
from tests.dashboard.conftest import browser_login, user_with_token
from tests.dashboard.greet_job import JOB, REGISTRATION

FIELD = '[data-path="/payload/{}"]'


def _field(page: Page, name: str) -> Locator:
    return page.locator(FIELD.format(name))


async def _registered(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The job registered by a worker of the runner's; the worker's id."""
    response = await client.put("/v1/joblib/rooms/lab/jobs", json=REGISTRATION, headers=headers)
    assert response.status_code in (200, 201), response.text
    worker_id: str = response.json()["worker_id"]
    return worker_id


async def _count(core: Core) -> int:
    async with core.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(Task)) or 0)


async def test_a_run_refused_by_the_schema_shows_why_then_a_fixed_one_is_followed_to_its_end(
    served: str, page: Page, core: Core, client: httpx.AsyncClient
) -> None:
    headers = await user_with_token(core, "runner@example.com", "operator")
    worker_id = await _registered(client, headers)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Security Policy" in m.text else None)
    await browser_login(page, served, "runner@example.com")
    await page.goto(f"{served}/dashboard/jobs/{quote(JOB)}")
    await page.click('[data-testid="run-link"]')
    await page.wait_for_url(f"{served}/dashboard/jobs/{quote(JOB)}/run")

    # Each kind of the schema has its input; what the builder cannot draw is JSON text.
    await expect(_field(page, "name").locator("label")).to_contain_text("Name *")
    await expect(_field(page, "name")).to_contain_text("Who is greeted")
    await expect(_field(page, "count").locator('input[type="number"]')).to_have_value("2")
    await expect(_field(page, "mode").locator("select")).to_have_value("0")
    await expect(_field(page, "loud").locator("select")).to_have_value("false")
    await expect(_field(page, "tags").locator("button.add")).to_be_visible()
    await expect(page.locator('fieldset[data-path="/payload/size"] legend')).to_contain_text("size")
    await expect(_field(page, "size/w").locator("label")).to_contain_text("w *")
    await expect(_field(page, "extra").locator("textarea")).to_be_visible()

    # A value the form does not check itself: the server's 422 lands beside the field.
    await _field(page, "name").locator("input").fill("Ada")
    await _field(page, "count").locator("input").fill("0")
    await _field(page, "tags").locator("button.add").click()
    await _field(page, "tags").locator("input").fill("x")
    await page.click('[data-testid="run-submit"]')
    count_error = page.locator('[data-error-for="/payload/count"]')
    await expect(count_error).to_be_visible()
    await expect(count_error).to_contain_text("less than the minimum of 1")
    await expect(page.locator('[data-testid="run-errors"]')).to_contain_text("422")
    await expect(page.locator('[data-testid="run-result"]')).to_be_hidden()
    assert await _count(core) == 0

    await _field(page, "count").locator("input").fill("3")
    await page.click('[data-testid="run-submit"]')
    task_id = page.locator('[data-testid="task-id"]')
    await expect(task_id).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    await expect(count_error).to_be_hidden()
    shown = await task_id.text_content() or ""
    await expect(page.locator('[data-testid="task-link"]')).to_have_attribute(
        "href", f"/dashboard/tasks/{shown}"
    )
    status = page.locator('[data-testid="task-status"]')
    await expect(status).to_have_text("pending")
    async with core.sessionmaker() as db:
        task = await db.scalar(select(Task).where(Task.id == uuid.UUID(shown)))
    assert task is not None
    assert task.payload == {
        "name": "Ada",
        "count": 3,
        "loud": False,
        "mode": "fast",
        "tags": ["x"],
    }

    claimed = await client.post(
        "/v1/joblib/tasks/claim", json={"worker_id": worker_id}, headers=headers
    )
    assert claimed.json()["task"]["id"] == shown
    await client.patch(f"/v1/joblib/tasks/{shown}", json={"status": "running"}, headers=headers)
    await expect(status).to_have_text("running")
    progress = {"worker_id": worker_id, "attempt": 1, "progress": 0.5, "message": "half"}
    await client.post(f"/v1/joblib/tasks/{shown}/progress", json=progress, headers=headers)
    await expect(page.locator('#run-result [data-field="progress"]')).to_have_text("50% · half")
    done = {"status": "completed", "result": {"greeting": "hello Ada"}}
    await client.patch(f"/v1/joblib/tasks/{shown}", json=done, headers=headers)
    await expect(status).to_have_text("completed")
    await expect(page.locator('[data-testid="task-result"]')).to_contain_text("hello Ada")

    origin = urlsplit(served).netloc
    assert all(urlsplit(url).netloc == origin for url in requested), requested
    assert refused == []  # nothing refused by the content security policy


async def test_the_form_refuses_a_missing_required_field_without_sending(
    served: str, page: Page, core: Core, client: httpx.AsyncClient
) -> None:
    headers = await user_with_token(core, "runner@example.com", "operator")
    await _registered(client, headers)
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    await browser_login(page, served, "runner@example.com")
    posted.clear()
    await page.goto(f"{served}/dashboard/jobs/{quote(JOB)}/run")
    await page.click('[data-testid="run-submit"]')
    await expect(page.locator('[data-error-for="/payload/name"]')).to_have_text("required")
    await expect(page.locator('[data-testid="run-errors"]')).to_contain_text("Not sent")
    assert posted == []
    assert await _count(core) == 0


async def test_the_raw_json_toggle_carries_the_form_values_and_submits_them(
    served: str, page: Page, core: Core, client: httpx.AsyncClient
) -> None:
    headers = await user_with_token(core, "runner@example.com", "operator")
    await _registered(client, headers)
    await browser_login(page, served, "runner@example.com")
    await page.goto(f"{served}/dashboard/jobs/{quote(JOB)}/run")
    await _field(page, "name").locator("input").fill("Bo")
    await page.check('[data-testid="raw-toggle"]')
    raw = page.locator('[data-testid="raw-payload"]')
    await expect(raw).to_be_visible()
    await expect(raw).to_have_value(re.compile('"name": "Bo"'))
    await raw.fill('{"name": "Bo", "count": "many"}')
    await page.click('[data-testid="run-submit"]')
    # In raw mode an error of any field is shown beside the JSON text.
    await expect(page.locator('[data-error-for="/payload"]')).to_contain_text("not of type")
    await raw.fill('{"name": "Bo", "count": 5}')
    await page.click('[data-testid="run-submit"]')
    await expect(page.locator('[data-testid="task-status"]')).to_have_text("pending")
    async with core.sessionmaker() as db:
        [task] = (await db.scalars(select(Task))).all()
    assert task.payload == {"name": "Bo", "count": 5}
