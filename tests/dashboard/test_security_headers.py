"""Every dashboard answer forbids framing, sniffing and any script but our own file; the
pages still work in a real browser with that policy on (no violation reported)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from app.state import Core
from tests.beyond.conftest import Api
from tests.dashboard.conftest import SignIn, browser_login, user_with_token

LIVE_DEADLINE_MS = 2000


def assert_dashboard_headers(response: httpx.Response) -> None:
    policy = response.headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("script-src") == ["'self'"], policy
    assert directives.get("frame-ancestors") == ["'none'"], policy
    assert directives.get("object-src", directives.get("default-src")) == ["'none'"], policy
    assert "'unsafe-inline'" not in policy, policy
    assert "'unsafe-eval'" not in policy, policy
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy") == "same-origin"


async def test_every_kind_of_dashboard_answer_carries_the_security_headers(
    client: httpx.AsyncClient, sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    task_id = (await api.submit(user_headers)).json()["id"]
    admin = await sign_in("admin")
    answers = {
        "login form": await client.get("/dashboard/login"),
        "redirect to sign in": await client.get("/dashboard"),
        "script": await client.get("/dashboard/static/dashboard.js"),
        "stylesheet": await client.get("/dashboard/static/dashboard.css"),
        "overview": await admin.get("/dashboard"),
        "task page": await admin.get(f"/dashboard/tasks/{task_id}"),
        "users page": await admin.get("/dashboard/users"),
        "problem": await admin.get("/dashboard/tasks/00000000-0000-0000-0000-000000000000"),
        "refused action": await admin.post(f"/dashboard/tasks/{task_id}/cancel"),
    }
    assert [answer.status_code for answer in answers.values()] == [
        200, 303, 200, 200, 200, 200, 200, 404, 403
    ]  # fmt: skip
    for name, answer in answers.items():
        try:
            assert_dashboard_headers(answer)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


async def test_api_answers_are_nosniff_without_the_dashboard_policy(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    for response in (
        await client.get("/health"),
        await client.get("/v1/joblib/rooms/r1/jobs", headers=user_headers),
        await client.get("/v1/joblib/tasks/nope", headers=user_headers),
    ):
        assert response.headers.get("x-content-type-options") == "nosniff"
        assert response.headers.get("referrer-policy") == "same-origin"
        assert "content-security-policy" not in response.headers
        assert len(response.headers.get_list("x-content-type-options")) == 1


@pytest.fixture
async def violations(page: Page) -> list[str]:
    """Content-Security-Policy violations the browser reports on the page's console.
    Async: subscribing schedules a call to the browser on the running loop."""
    found: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", on_console)
    return found


async def test_the_dashboard_works_under_its_policy_in_a_browser(
    served: str, page: Page, core: Core, api: Api, violations: list[str]
) -> None:
    worker_h = await user_with_token(core, "worker@example.com", "operator")
    await api.register(worker_h)
    task_id = (await api.submit(worker_h, payload={"n": 1})).json()["id"]
    landing = await page.goto(f"{served}/dashboard/login")
    assert landing is not None
    assert landing.headers.get("x-frame-options") == "DENY"
    assert "script-src 'self'" in landing.headers.get("content-security-policy", "")

    await browser_login(page, served, "worker@example.com")
    # Our own script runs: live updates arrive and the buttons act.
    await expect(page.get_by_test_id("live-state")).to_have_text("live", timeout=LIVE_DEADLINE_MS)
    await page.click(f'button[data-action="cancel"][data-task="{task_id}"]')
    await expect(page.locator("#flash")).to_contain_text("cancelled")
    await page.goto(f"{served}/dashboard/tasks/{task_id}")
    await expect(page.get_by_test_id("task")).to_contain_text("cancelled")
    assert violations == []

    # An inline script the page did not ship (what an injection would add) does not run.
    await page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.appendChild(script);
        }"""
    )
    assert await page.evaluate("window.injected === undefined")
    assert any("inline script" in text for text in violations), violations
