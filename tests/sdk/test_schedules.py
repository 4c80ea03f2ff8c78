"""`JobService.schedule` / `unschedule` against a live server: a schedule's tasks run on a
worker until it is deleted (both backends)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from jobserver_sdk import ApiError, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import EXECUTIONS, SayHello

pytestmark = pytest.mark.slow

WITHIN = 30.0


async def ran_twice(who: str) -> None:
    async with asyncio.timeout(WITHIN):
        while True:
            if EXECUTIONS[who] >= 2:
                return
            await asyncio.sleep(0.1)


async def test_a_scheduled_job_runs_every_period_until_unscheduled(
    server: Server, room: str
) -> None:
    who = f"cron-{uuid.uuid4().hex[:6]}"
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [SayHello]),
    ):
        schedule = await service.schedule(SayHello(who=who), every=timedelta(seconds=1))
        assert (schedule.every_seconds, schedule.cron, schedule.payload) == (1, None, {"who": who})
        assert schedule.next_fire_at is not None
        await ran_twice(who)
        await service.unschedule(schedule.id)
        with pytest.raises(ApiError) as gone:
            await service.client.request("GET", f"/v1/joblib/schedules/{schedule.id}")
    assert gone.value.status == 404


async def test_a_bad_cron_expression_is_refused(server: Server, room: str) -> None:
    async with (
        JobService(server.url, server.token, room=room) as service,
        workers(server.url, server.token, room, [SayHello]),
    ):
        with pytest.raises(ApiError) as refused:
            await service.schedule(SayHello(), cron="not a cron", timezone="Europe/Paris")
    assert refused.value.status == 422
