"""How asyncpg connects for the parts that use it directly (the task store, the leader's
lock): the same URL the ORM engine takes, read the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url

# Query options of the URL that only SQLAlchemy's adapter understands; asyncpg would send
# them to the server as settings and fail.
ADAPTER_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func")


def asyncpg_connect_args(database_url: str) -> dict[str, Any]:
    """asyncpg.connect() keywords for a SQLAlchemy URL, read as SQLAlchemy's own asyncpg
    dialect reads it (query options, several hosts), minus the options only it knows."""
    dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
    _, options = dialect.create_connect_args(make_url(database_url))  # type: ignore[no-untyped-call]
    for adapter_only in ADAPTER_OPTIONS:
        options.pop(adapter_only, None)
    return dict(options)
