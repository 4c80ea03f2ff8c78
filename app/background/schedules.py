"""The leader's schedules loop: every tick, fire the schedules that are due."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.background.leader import Leader
from app.services.schedules.firing import fire_due
from app.services.tasks.service import TaskService
from app.settings import Settings

log = logging.getLogger(__name__)


async def run_schedules(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    tasks: TaskService,
    leader: Leader,
    stop: asyncio.Event,
) -> None:
    """Every tick, on the leader: one schedules pass. A failing pass is logged and the loop
    goes on; a fire time it left undone is still due next tick."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.schedule_tick_seconds)
        if stop.is_set():
            return
        if not leader.leading:
            continue
        try:
            await fire_due(sessions, tasks, settings.schedule_grace_seconds)
        except Exception:
            log.exception("schedules pass failed; next try in one tick")
