"""Pagination: the contract's envelope for every list endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    limit: int
    offset: int


async def count(session: AsyncSession, query: Select[Any]) -> int:
    """Count the rows `query` matches, ignoring its order, limit and offset."""
    inner = query.order_by(None).limit(None).offset(None).subquery()
    return int((await session.execute(select(func.count()).select_from(inner))).scalar_one())


async def fetch(
    session: AsyncSession, query: Select[Any], page: PageRequest
) -> tuple[list[Any], int]:
    """Rows of one page and the total; `limit=0` only counts (the contract's idiom)."""
    total = await count(session, query)
    if page.limit == 0 or page.offset >= total:
        return [], total
    rows = (await session.execute(query.limit(page.limit).offset(page.offset))).all()
    return list(rows), total
