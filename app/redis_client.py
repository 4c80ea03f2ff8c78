"""How every Redis client of the server is built: each call bounded by short timeouts, so a
hung Redis costs a request about one timeout instead of stalling it."""

from __future__ import annotations

import socket
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from app.settings import Settings

# Pub/sub connections wait for messages without a timeout; keepalives notice a Redis host
# that vanished (after about 10 + 3 * 5 s) so the listener reconnects.
KEEPALIVE_IDLE_SECONDS = 10
KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_PROBES = 3


def client_options(settings: Settings) -> dict[str, Any]:
    """Keywords for `Redis.from_url` (also handed to python-socketio's Redis manager)."""
    return {
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        # One immediate retry, for a pooled connection that broke (a restarted Redis);
        # never for a timeout, which would multiply what a hung Redis costs.
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_options(),
    }


def keepalive_options() -> dict[int, int]:
    wanted = {
        "TCP_KEEPIDLE": KEEPALIVE_IDLE_SECONDS,
        "TCP_KEEPINTVL": KEEPALIVE_INTERVAL_SECONDS,
        "TCP_KEEPCNT": KEEPALIVE_PROBES,
    }
    # Not every platform names all three (macOS lacks TCP_KEEPIDLE).
    return {getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)}


def connect(url: str, settings: Settings) -> Redis:
    return Redis.from_url(url, **client_options(settings))
