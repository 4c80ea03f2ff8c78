"""A status report answered 500 is sent again until the server applies it (fenced reports
are idempotent): the work done is kept (both backends)."""

from __future__ import annotations

import uuid

import pytest
from jobserver_sdk import JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, Count
from tests.sdk.proxy import faulty_proxy

pytestmark = pytest.mark.slow


def completion_report(method: str, path: str, body: bytes) -> bool:
    return method == "PATCH" and path.startswith("/v1/joblib/tasks") and b'"completed"' in body


@pytest.mark.parametrize(
    "apply_first", [False, True], ids=["500-before-applying", "500-after-applying"]
)
async def test_500_on_the_completion_report_is_retried_and_the_result_kept(
    server: Server, room: str, apply_first: bool
) -> None:
    tag = uuid.uuid4().hex
    async with (
        faulty_proxy(server.url, completion_report, apply_first=apply_first) as proxy,
        JobService(server.url, server.token, room=room) as service,
        workers(proxy.url, server.token, room, [Count]),
    ):
        task = await service.submit(Count(tag=tag, n=7), max_attempts=1)
        assert await task.result(timeout=30) == 7
    assert proxy.tripped == 1
    assert (task.info.status, task.info.attempt) == ("completed", 1)
    assert EXECUTIONS[f"{tag}:7"] == 1
