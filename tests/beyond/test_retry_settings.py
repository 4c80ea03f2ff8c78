"""RETRY_BACKOFF_* settings drive the due time of a retried attempt."""

from __future__ import annotations

from typing import Any

import pytest

from tests.beyond.conftest import Api


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retry_backoff_base_seconds": 0, "retry_backoff_max_seconds": 0}


async def test_retry_is_due_after_the_configured_backoff(
    api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    task = (await api.submit(user_headers, max_attempts=2)).json()
    await api.claim(user_headers, worker)
    await api.patch(user_headers, task["id"], status="failed", error="boom")
    again = await api.claim(user_headers, worker)
    assert again is not None
    assert (again["id"], again["attempt"]) == (task["id"], 2)
