"""What one running server holds: built in create_app, reached through request.app."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.dashboard.feed import Feed
from app.lifecycle import Lifecycle
from app.metrics import ScrapeCache
from app.notify import TaskWaiters
from app.realtime.presence import Presence
from app.realtime.publisher import Publisher
from app.results import MemoryResultBackend, ResultBackend
from app.services.actor_cache import ActorCache
from app.services.tasks.service import TaskService
from app.services.tasks.store import TaskStore
from app.services.throttle import MemoryCounter, Throttle
from app.settings import Settings


@dataclass
class Core:
    settings: Settings
    secret: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    notifier: TaskWaiters
    publisher: Publisher
    store: TaskStore
    tasks: TaskService
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    actor_cache: ActorCache = field(default_factory=lambda: ActorCache(0))
    redis: Redis | None = None
    presence: Presence | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    results: ResultBackend = field(default_factory=MemoryResultBackend)
    scrape_cache: ScrapeCache | None = None
    dashboard_feed: Feed | None = None
    throttle: Throttle = field(default_factory=lambda: Throttle(MemoryCounter(), 300.0))

    @property
    def internal_jobs(self) -> Container[str]:
        """The @internal jobs this process can run (their executors are registered)."""
        return self.tasks.internal_jobs

    @internal_jobs.setter
    def internal_jobs(self, names: Container[str]) -> None:
        self.tasks.internal_jobs = names
