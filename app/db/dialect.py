"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Base


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def insert_ignoring_conflicts(
    session: AsyncSession, model: type[Base], values: dict[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    module: Any = postgresql if dialect_name(session) == "postgresql" else sqlite
    statement = module.insert(model).values(**values).on_conflict_do_nothing()
    result: Any = await session.execute(statement)
    return bool(result.rowcount)
