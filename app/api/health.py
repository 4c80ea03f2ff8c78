"""Liveness and readiness: the only routes besides login/register that need no token."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
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


async def _database_answers(core: Core) -> None:
    async with core.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


@router.get("/ready")
async def ready(core: CoreDep) -> dict[str, str]:
    """The database (and Redis, when configured) answer."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await _database_answers(core)
    except Exception as exc:
        raise NotReady(f"Database unreachable: {type(exc).__name__}") from exc
    if core.redis is not None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await core.redis.ping()
        except Exception as exc:
            raise NotReady(f"Redis unreachable: {type(exc).__name__}") from exc
    return {"status": "ready"}
