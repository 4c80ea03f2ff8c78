"""Lifecycle on its own: the signal begins the stop and still reaches the server's handler,
and shutdown steps are bounded by their cap and by the shared budget."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest
from jobserver_sdk import Worker
from zndraw_joblib.client import JobManager

from app import lifecycle as lifecycles
from app.lifecycle import Lifecycle
from app.settings import Settings

HANG_SECONDS = 30.0


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """A Python SIGTERM handler standing in for uvicorn's; the signals it received. (SIGINT
    is left alone here: asyncio's runner under pytest has its own ideas about it; the live
    tests send it to a real server.)"""
    received: list[int] = []

    def handle_exit(sig: int, _frame: FrameType | None) -> None:
        received.append(sig)

    previous = signal.signal(signal.SIGTERM, handle_exit)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_sigterm_begins_the_stop_and_reaches_the_servers_handler_too(
    server_handler: list[int],
) -> None:
    lifecycle = Lifecycle()
    woke = asyncio.Event()
    async with lifecycle.serving():
        with lifecycle.waking(woke):
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(woke.wait(), 1)
        assert lifecycle.stopping
        assert server_handler == [signal.SIGTERM]


async def test_the_servers_handler_is_back_after_serving(server_handler: list[int]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    lifecycle = Lifecycle()
    async with lifecycle.serving():
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) is before
    assert lifecycle.stopping  # the lifespan's end is a stop too


async def test_no_handler_goes_in_front_of_the_default_action() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        async with Lifecycle().serving():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_on_stop_callbacks_run_in_order_when_the_stop_begins() -> None:
    lifecycle = Lifecycle()
    ran: list[str] = []

    async def first() -> None:
        ran.append("first")

    async def second() -> None:
        ran.append("second")

    lifecycle.on_stop("first", first)
    lifecycle.on_stop("second", second)
    async with lifecycle.serving():
        lifecycle.stop()
        lifecycle.stop()
        await asyncio.sleep(0.05)
        assert ran == ["first", "second"]
    assert ran == ["first", "second"]


async def test_unless_stopping_gives_the_result_or_none_once_stopping() -> None:
    lifecycle = Lifecycle()
    assert await lifecycle.unless_stopping(asyncio.sleep(0, "done")) == "done"
    waiting = asyncio.create_task(lifecycle.unless_stopping(asyncio.sleep(HANG_SECONDS)))
    await asyncio.sleep(0.05)
    lifecycle.stop()
    assert await asyncio.wait_for(waiting, 1) is None


async def test_a_hanging_step_is_abandoned_after_its_cap() -> None:
    lifecycle = Lifecycle()
    started = time.monotonic()
    await lifecycle.bounded("hangs", 0.2, lambda: asyncio.sleep(HANG_SECONDS))
    assert time.monotonic() - started < 1


async def test_steps_share_one_budget_once_the_lifespan_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifecycles, "SHUTDOWN_SECONDS", 0.3)
    lifecycle = Lifecycle()
    async with lifecycle.serving():
        pass
    started = time.monotonic()
    for name in ("one", "two", "three"):
        await lifecycle.bounded(name, HANG_SECONDS, lambda: asyncio.sleep(HANG_SECONDS))
    # The budget, then the last-chance slice for each step reached after it ran out.
    assert time.monotonic() - started < 0.3 + 2 * lifecycles.LAST_CHANCE_SECONDS + 0.5


async def test_a_step_that_swallows_its_cancellation_does_not_hold_the_exit() -> None:
    async def stubborn() -> None:
        for _ in range(2):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(HANG_SECONDS)

    started = time.monotonic()
    await Lifecycle().bounded("stubborn", 0.2, stubborn)
    assert time.monotonic() - started < 1


def test_default_disconnect_grace_spans_two_heartbeats_of_every_client_we_ship() -> None:
    """A worker whose socket dropped (a restart, a blip) has two heartbeats to show it is
    alive before its tasks fail."""
    joblib = inspect.signature(JobManager).parameters["heartbeat_interval"].default
    sdk = inspect.signature(Worker).parameters["heartbeat_seconds"].default
    grace = Settings.model_fields["disconnect_grace_seconds"].default
    assert grace >= 2 * max(joblib, sdk)
