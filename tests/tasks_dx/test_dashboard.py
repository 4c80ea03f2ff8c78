"""The dashboard's task page shows the running attempt's progress and every attempt."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.dashboard.conftest import dashboard_login
from tests.tasks_dx.calls import claim_one, finish, progress, start, submit, worker

Headers = dict[str, str]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retry_backoff_base_seconds": 0.0}


async def test_the_task_page_shows_progress_and_attempts(
    app: Any, client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await worker(client, user_headers)
    task_id = await submit(client, user_headers, max_attempts=2)
    first = await claim_one(client, user_headers, worker_id)
    await finish(client, user_headers, first, worker_id, "failed", error="first boom")
    second = await claim_one(client, user_headers, worker_id)
    await start(client, user_headers, second, worker_id)
    await progress(client, user_headers, task_id, worker_id, 2, 0.42, "halfway or so")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as browser:
        assert (await dashboard_login(browser, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
        page = (await browser.get(f"/dashboard/tasks/{task_id}")).text
    assert "42%" in page
    assert "halfway or so" in page
    assert 'data-attempt="1"' in page
    assert "first boom" in page
    assert 'data-attempt="2"' in page
