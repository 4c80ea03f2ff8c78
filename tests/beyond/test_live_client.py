"""The real zndraw-joblib JobManager against a live server: the extra response fields are
harmless, and a task submitted with attempts to spare comes back to it after a failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from zndraw_joblib import Category, Extension, JobManager

from tests.live import ApiManager, live_server

pytestmark = pytest.mark.slow


class Echo(Extension):
    category: ClassVar[Category] = Category.MODIFIER
    text: str = ""

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.text


def test_job_manager_fails_retries_and_completes_against_the_live_server(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    with live_server(database_url, tmp_path / "data") as server:
        api = ApiManager(server.url, server.token())
        manager = JobManager(api)
        try:
            manager.register(Echo, room="r1")
            plain_id = manager.submit(Echo(text="a"), "r1", job_room="r1")
            plain = manager.claim()
            assert plain is not None
            assert plain.task_id == plain_id
            manager.fail(plain, "boom")
            task_url = f"{server.url}/v1/joblib/tasks"
            headers = api.get_headers()
            assert httpx.get(f"{task_url}/{plain_id}", headers=headers).json()["status"] == (
                "failed"
            )
            retried = httpx.post(
                f"{server.url}/v1/joblib/rooms/r1/tasks/r1:modifiers:Echo",
                json={"payload": {"text": "b"}, "max_attempts": 2},
                headers=headers,
            ).json()
            first = manager.claim()
            assert first is not None
            manager.start(first)
            manager.fail(first, "flaky")
            with pytest.raises((PermissionError, ValueError)):
                manager.complete(first)  # the old attempt's late report is refused
            httpx.post(f"{task_url}/{retried['id']}/cancel", headers=headers)
            httpx.post(f"{task_url}/{retried['id']}/retry", headers=headers)
            second = manager.claim()
            assert second is not None
            assert second.task_id == retried["id"]
            manager.start(second)
            manager.complete(second)
            final = httpx.get(f"{task_url}/{retried['id']}", headers=headers).json()
            assert (final["status"], final["attempt"]) == ("completed", 3)
        finally:
            manager.disconnect()
            api.close()
