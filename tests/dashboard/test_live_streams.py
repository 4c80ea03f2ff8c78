"""The live streams behind the pages: the job page's numbers and every page's pulse come
from the feed's one shared read per second, and each stream announces its planned end."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import event

from app.dashboard import routes
from app.state import Core
from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import SignIn

JOB_STREAM = f"/dashboard/jobs/{quote(JOB)}/stream"
STREAMS = 20
SHORT_STREAM_SECONDS = 1.5


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, data) of each event of a finished SSE answer."""
    found = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


@pytest.fixture
async def viewer(served: str, sign_in: SignIn) -> Any:
    cookie = (await sign_in("viewer")).cookies["jobserver_session"]
    async with httpx.AsyncClient(
        base_url=served,
        cookies={"jobserver_session": cookie},
        limits=httpx.Limits(max_connections=STREAMS + 5),
        timeout=10,
    ) as http:
        yield http


@pytest.fixture
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "STREAM_SECONDS", SHORT_STREAM_SECONDS)


@pytest.mark.usefixtures("short_streams")
async def test_a_stream_announces_its_planned_end_last(viewer: httpx.AsyncClient) -> None:
    response = await viewer.get("/dashboard/stream")
    names = [name for name, _ in _events(response.text)]
    assert names[-1] == "end"
    assert names[:-1]
    assert set(names[:-1]) == {"overview"}


@pytest.mark.usefixtures("short_streams")
async def test_the_pulse_stream_carries_the_time_and_no_page(viewer: httpx.AsyncClient) -> None:
    found = _events((await viewer.get("/dashboard/stream", params={"view": "pulse"})).text)
    pulses = [data for name, data in found if name == "pulse"]
    assert pulses
    assert all(set(data) == {"at"} for data in pulses)


@pytest.mark.usefixtures("short_streams")
async def test_the_job_stream_sends_the_jobs_counts_and_chart(
    viewer: httpx.AsyncClient, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    await api.submit(user_headers)
    found = _events((await viewer.get(JOB_STREAM)).text)
    jobs = [data for name, data in found if name == "job"]
    assert jobs, found
    assert 'data-field="queue-depth">1<' in jobs[-1]["html"]
    assert set(jobs[-1]["chart"]) == {"start", "completed", "failed"}


async def test_the_job_stream_of_an_unknown_job_is_404(viewer: httpx.AsyncClient) -> None:
    response = await viewer.get("/dashboard/jobs/r1%3Amodifiers%3ANope/stream")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_job_pages_share_one_read_per_second(
    viewer: httpx.AsyncClient, core: Core, api: Api, user_headers: dict[str, str]
) -> None:
    """However many browsers watch a job, its numbers are read once per feed interval."""
    await api.register(user_headers)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async def watch() -> None:
        received = 0
        async with viewer.stream("GET", JOB_STREAM) as response:
            async for line in response.aiter_lines():
                received += line == "event: job"
                if received == 2:
                    return

    event.listen(core.engine.sync_engine, "before_cursor_execute", count)
    started = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(watch() for _ in range(STREAMS))), timeout=30)
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", count)
    elapsed = time.monotonic() - started
    assert core.dashboard_feed is not None
    # The job's status counts, grouped by status alone, open each read of its live part.
    reads = sum("GROUP BY task_counts.status" in s for s in statements)
    assert 1 <= reads <= elapsed / core.dashboard_feed.interval + 1, (reads, elapsed)
