"""Alembic environment: async engine from jobserver Settings, or a connection handed in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import context
from sqlalchemy.engine import Connection

from app.db.models import Base
from app.db.session import make_engine
from app.settings import Settings

target_metadata = Base.metadata


# Indexes with a DESC column are expression indexes to SQLite's reflection, which
# alembic cannot compare there; PostgreSQL compares them in full.
SQLITE_UNCOMPARABLE_INDEXES = frozenset({"ix_tasks_claimable"})


def _include_object(dialect: str) -> Callable[..., bool]:
    def include(obj: object, name: str | None, type_: str, *_: object) -> bool:
        return not (
            dialect == "sqlite" and type_ == "index" and name in SQLITE_UNCOMPARABLE_INDEXES
        )

    return include


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or Settings().effective_database_url
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_with_own_engine())


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url") or Settings().effective_database_url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
