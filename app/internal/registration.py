"""The Job rows of the @internal extensions: created, reactivated or schema replaced."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import insert_ignoring_conflicts
from app.db.models import Job
from app.internal.extensions import category_of, full_name
from app.services.rooms import INTERNAL_ROOM


async def sync_jobs(session: AsyncSession, extensions: Sequence[type[BaseModel]]) -> None:
    """Idempotent, and safe when replicas start together: the insert ignores the unique
    conflict and the update then makes the row match (BACKGROUND.md §2, no conflict check).
    Runs in the caller's transaction; never commits."""
    for cls in extensions:
        name = full_name(cls)
        schema = cls.model_json_schema()
        await insert_ignoring_conflicts(
            session,
            Job,
            {
                "id": uuid.uuid4(),
                "room_id": INTERNAL_ROOM,
                "category": category_of(cls),
                "name": cls.__name__,
                "full_name": name,
                "schema_": schema,
            },
        )
        await session.execute(
            update(Job).where(Job.full_name == name).values(deleted=False, schema_=schema)
        )
