"""Liveness and readiness: the only routes besides login/register that need no token."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from app.api.deps import CoreDep
from app.errors import NotReady
from app.state import Core

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


# A dependency that hangs (a dropped packet, not a refused port) must fail the probe well
# within the usual probe timeouts instead of after the driver's own (asyncpg: 60 s).
CHECK_TIMEOUT_SECONDS = 3.0
# Redis only degrades the server, so its check must not make the probe itself time out
# (Kubernetes waits 1 s by default).
REDIS_CHECK_TIMEOUT_SECONDS = 0.5


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"
    redis: Literal["ok", "degraded"] | None = None


async def _database_answers(core: Core) -> None:
    async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), core.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _redis_state(core: Core) -> Literal["ok", "degraded"] | None:
    if core.redis is None:
        return None
    try:
        async with asyncio.timeout(REDIS_CHECK_TIMEOUT_SECONDS):
            await core.redis.ping()
    except Exception:
        return "degraded"
    return "ok"


@router.get("/ready", response_model_exclude_none=True)
async def ready(core: CoreDep) -> ReadyOut:
    """200 while the database answers; 503 (problem+json) when it does not. Redis (when
    configured) is reported but never fails the probe: without it, REST keeps working and
    only cross-replica wake-ups and Socket.IO fan-out are missing (`"redis": "degraded"`)."""
    database, redis = await asyncio.gather(
        _database_answers(core), _redis_state(core), return_exceptions=True
    )
    if isinstance(database, BaseException):
        raise NotReady(f"Database unreachable: {type(database).__name__}") from database
    assert not isinstance(redis, BaseException)  # _redis_state catches what Redis raises
    return ReadyOut(redis=redis)
