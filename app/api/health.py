"""Liveness and readiness: the only routes besides login/register that need no token."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from app.api.deps import CoreDep
from app.errors import NotReady

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(core: CoreDep) -> dict[str, str]:
    """The database (and Redis, when configured) answer."""
    try:
        async with core.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise NotReady(f"Database unreachable: {type(exc).__name__}") from exc
    if core.redis is not None:
        try:
            await core.redis.ping()
        except Exception as exc:
            raise NotReady(f"Redis unreachable: {type(exc).__name__}") from exc
    return {"status": "ready"}
