"""What one running server holds: built in create_app, reached through request.app."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.dashboard.feed import Feed
from app.metrics import ScrapeCache
from app.notify import TaskNotifier
from app.realtime.presence import Presence
from app.realtime.publisher import Publisher
from app.results import MemoryResultBackend, ResultBackend
from app.services.actor_cache import ActorCache
from app.settings import Settings


@dataclass
class Core:
    settings: Settings
    secret: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    notifier: TaskNotifier
    publisher: Publisher
    actor_cache: ActorCache = field(default_factory=lambda: ActorCache(0))
    redis: Redis | None = None
    presence: Presence | None = None
    internal_jobs: Container[str] = field(default_factory=frozenset)
    extras: dict[str, Any] = field(default_factory=dict)
    results: ResultBackend = field(default_factory=MemoryResultBackend)
    scrape_cache: ScrapeCache | None = None
    dashboard_feed: Feed | None = None
