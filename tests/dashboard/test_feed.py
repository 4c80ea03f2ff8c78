"""The aggregates behind the dashboard are read at most once a second per server, however
many browsers watch."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from app.dashboard import routes
from app.state import Core
from tests.dashboard.conftest import SignIn

STREAMS = 50
WATCH_SECONDS = 3.0


async def test_fifty_streams_share_one_read_per_second(
    served: str, sign_in: SignIn, core: Core
) -> None:
    cookie = (await sign_in("viewer")).cookies["jobserver_session"]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async with httpx.AsyncClient(
        base_url=served,
        cookies={"jobserver_session": cookie},
        limits=httpx.Limits(max_connections=STREAMS + 5),
        timeout=10,
    ) as http:
        first_events: list[str] = []

        async def watch() -> int:
            received = 0
            async with http.stream("GET", "/dashboard/stream") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        first_events.append(line)
                        received += 1
                        if received == 3:
                            return received
            return received

        event.listen(core.engine.sync_engine, "before_cursor_execute", count)
        started = time.monotonic()
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(watch() for _ in range(STREAMS))), timeout=30
            )
        finally:
            event.remove(core.engine.sync_engine, "before_cursor_execute", count)
        elapsed = time.monotonic() - started
    assert results == [3] * STREAMS
    assert set(first_events) == {"event: overview"}
    # The stats service's grouped read of the counters opens every read of the aggregates.
    reads = sum("GROUP BY task_counts.job_name, task_counts.status" in s for s in statements)
    assert core.dashboard_feed is not None
    assert 1 <= reads <= elapsed / core.dashboard_feed.interval + 1, (reads, elapsed)
    # Everything else: one session check per stream plus the reads' other queries.
    assert len(statements) <= STREAMS + reads * 12


async def test_a_stream_ends_on_its_own_and_tells_the_browser_to_reconnect(
    served: str, sign_in: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn waits for open responses before it stops: an endless stream would block a
    shutdown forever, so each one ends after STREAM_SECONDS and EventSource reconnects."""
    monkeypatch.setattr(routes, "STREAM_SECONDS", 1.5)
    cookie = (await sign_in("viewer")).cookies["jobserver_session"]
    async with httpx.AsyncClient(base_url=served, cookies={"jobserver_session": cookie}) as http:
        response = await asyncio.wait_for(http.get("/dashboard/stream"), timeout=10)
    lines = response.text.splitlines()
    assert lines[0] == f"retry: {routes.RECONNECT_MS}"
    assert "event: overview" in lines


async def test_open_streams_end_when_the_server_starts_stopping(
    served: str, sign_in: SignIn, core: Core
) -> None:
    """uvicorn drains open responses before its lifespan shutdown: the stop itself (the
    signal) ends every stream, so the drain does not wait out STREAM_SECONDS."""
    cookie = (await sign_in("viewer")).cookies["jobserver_session"]
    async with (
        httpx.AsyncClient(base_url=served, cookies={"jobserver_session": cookie}) as http,
        http.stream("GET", "/dashboard/stream") as response,
    ):
        lines = response.aiter_lines()
        async with asyncio.timeout(10):
            while await anext(lines) != "event: overview":
                pass
        core.lifecycle.stop()
        async with asyncio.timeout(routes.STREAM_SECONDS / 2):
            async for _ in lines:
                pass
