"""EVENTS.md "Disconnect": a gone socket's workers are cleaned up after the grace period,
unless a socket re-joins with the worker, it heartbeats, or another socket holds it."""

from __future__ import annotations

import asyncio

from tests.live import LiveServer
from tests.realtime.conftest import (
    GRACE_SECONDS,
    Recorder,
    claim,
    heartbeat,
    recorder,
    register_job,
    submit,
    worker_exists,
)
from tests.realtime.test_events import worker_socket

PAST_GRACE = GRACE_SECONDS + 1.5


async def test_disconnect_without_rejoin_runs_the_delete_cascade_after_the_grace(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    task_id = submit(live.url, user_token, room_id, job, {})
    assert claim(live.url, user_token, worker_id) == task_id
    watcher = await recorder(live.url, user_token, room_id)
    sock = await worker_socket(live.url, user_token, job, worker_id)
    try:
        await sock.sio.disconnect()
        await asyncio.sleep(GRACE_SECONDS / 2)
        assert worker_exists(live.url, user_token, worker_id)
        failed = await watcher.wait("task_status_event")
        assert failed[0] == failed[0] | {
            "id": task_id,
            "status": "failed",
            "error": "Worker disconnected",
            "worker_id": worker_id,
            "queue_position": None,
        }
        assert await watcher.wait("jobs_invalidate") == [{}]
        assert not worker_exists(live.url, user_token, worker_id)
    finally:
        await watcher.sio.disconnect()


async def test_rejoin_with_the_same_worker_cancels_the_cleanup(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    first = await worker_socket(live.url, user_token, job, worker_id)
    await first.sio.disconnect()
    second = await worker_socket(live.url, user_token, job, worker_id)
    try:
        await asyncio.sleep(PAST_GRACE)
        assert worker_exists(live.url, user_token, worker_id)
    finally:
        await second.sio.disconnect()


async def test_heartbeat_cancels_the_cleanup(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    sock = await worker_socket(live.url, user_token, job, worker_id)
    await sock.sio.disconnect()
    await asyncio.sleep(0.2)
    assert heartbeat(live.url, user_token, worker_id) == 200
    await asyncio.sleep(PAST_GRACE)
    assert worker_exists(live.url, user_token, worker_id)


async def test_worker_held_by_another_socket_is_not_cleaned_up(
    live: LiveServer, user_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    staying: Recorder = await worker_socket(live.url, user_token, job, worker_id)
    leaving = await worker_socket(live.url, user_token, job, worker_id)
    try:
        await leaving.sio.disconnect()
        await asyncio.sleep(PAST_GRACE)
        assert worker_exists(live.url, user_token, worker_id)
    finally:
        await staying.sio.disconnect()


async def test_foreign_join_never_schedules_cleanup_of_the_worker(
    live: LiveServer, user_token: str, other_token: str, room_id: str
) -> None:
    worker_id = register_job(live.url, user_token, room_id)
    job = f"{room_id}:modifiers:Echo"
    intruder = await worker_socket(live.url, other_token, job, worker_id)
    await intruder.sio.disconnect()
    await asyncio.sleep(PAST_GRACE)
    assert worker_exists(live.url, user_token, worker_id)
