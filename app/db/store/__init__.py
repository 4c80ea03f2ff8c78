"""The task store's two implementations, chosen once at start by the database URL."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from app.db.store.postgres import PostgresTaskStore
from app.db.store.sqlite import SqliteTaskStore
from app.services.tasks.store import TaskStore


def make_store(database_url: str, pool_size: int) -> TaskStore:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SqliteTaskStore(url.database or ":memory:")
    return PostgresTaskStore(database_url, pool_size)
