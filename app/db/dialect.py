"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal_column
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


SECONDS_PER_DAY = 86_400


def later_by(
    dialect: str, later: ColumnElement[Any], earlier: ColumnElement[Any], seconds: float
) -> ColumnElement[bool]:
    """`later` is more than `seconds` after `earlier` (SQLite keeps times as text)."""
    if dialect == "postgresql":
        interval: ColumnElement[Any] = literal_column(f"interval '{float(seconds)} seconds'")
        return later > earlier + interval
    gap_days = func.julianday(later) - func.julianday(earlier)
    return gap_days > seconds / SECONDS_PER_DAY
