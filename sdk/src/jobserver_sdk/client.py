"""The transport: HTTP (auth header, retries on transient errors) and the Socket.IO client.

Everything above this module speaks in paths and JSON; nothing here knows about jobs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import aiohttp
import httpx
import socketio

from jobserver_sdk.errors import ApiError, ServerUnavailable

log = logging.getLogger("jobserver_sdk")

TRANSIENT_STATUS = frozenset({502, 503, 504})
DEFAULT_RETRY_SECONDS = 30.0
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0


def backoff(attempt: int, start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff with jitter: attempt 0 waits about `start`, never over `cap`."""
    return float(min(cap, start * 2**attempt) * random.uniform(0.5, 1.0))


class Client:
    """One server: an httpx client with the bearer token, and a Socket.IO client on demand.

    Requests are retried on connection errors and on 502/503/504 for up to
    `retry_seconds`. Only errors where the request cannot have been applied are retried
    for non-idempotent calls (`safe=False`): connection refused, or a 503 answer.

    Example:
        >>> async def main() -> None:
        ...     async with Client("http://127.0.0.1:8000", token) as client:
        ...         jobs = await client.request("GET", "/v1/joblib/rooms/demo/jobs")
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.retry_seconds = retry_seconds
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        http_timeout: float | None = None,
        safe: bool = True,
        retry_seconds: float | None = None,
    ) -> Any:
        """Send one request and return its JSON body (None for 204); ApiError on 4xx/5xx."""
        budget = self.retry_seconds if retry_seconds is None else retry_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        attempt = 0
        while True:
            try:
                response = await self._send(method, path, json, headers, http_timeout)
                if response.status_code not in TRANSIENT_STATUS or (
                    not safe and response.status_code != 503
                ):
                    return _body(response)
                reason: str = f"HTTP {response.status_code}"
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except httpx.TransportError as exc:
                if not safe:
                    raise ServerUnavailable(f"{method} {path}: {exc!r}") from exc
                reason = f"{type(exc).__name__}: {exc}"
            delay = backoff(attempt)
            if loop.time() + delay > deadline:
                raise ServerUnavailable(f"{method} {path}: {reason}")
            log.debug("%s %s: %s; retrying in %.2f s", method, path, reason, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def _send(
        self,
        method: str,
        path: str,
        json: Any,
        headers: dict[str, str] | None,
        http_timeout: float | None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {} if http_timeout is None else {"timeout": http_timeout}
        return await self.http.request(method, path, json=json, headers=headers, **extra)

    def socket(self) -> Socket:
        """A Socket.IO connection to this server, authenticated with the same token."""
        return Socket(self.url, self.token)


def _body(response: httpx.Response) -> Any:
    if response.status_code < 400:
        return None if response.status_code == 204 or not response.content else response.json()
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    raise ApiError(
        response.status_code,
        str(problem.get("type", "about:blank")),
        str(problem.get("detail", response.text[:500])),
    )


Handler = Callable[[Any], Awaitable[None]]


class Socket:
    """A Socket.IO client that keeps itself connected: the first connect is retried with
    backoff, later drops are reconnected by python-socketio, and `on_connect` callbacks run
    after every (re)connect so joins are re-sent."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        # Our own aiohttp session: engine.io would otherwise open one per failed connect
        # attempt and leave it for the garbage collector while the server is down.
        self._http = aiohttp.ClientSession()
        self.sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_delay=0.2,
            reconnection_delay_max=5.0,
            http_session=self._http,
        )
        self.on_connect: list[Callable[[], Awaitable[None]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.sio.on("connect", self._connected)

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    def on(self, event: str, handler: Handler) -> None:
        self.sio.on(event, handler)

    async def _connected(self) -> None:
        for callback in self.on_connect:
            try:
                await callback()
            except Exception:
                log.exception("socket on-connect callback failed")

    def start(self) -> None:
        """Connect in the background; returns at once."""
        self._runner = asyncio.create_task(self._connect_until_up())

    async def _connect_until_up(self) -> None:
        attempt = 0
        while not self.sio.connected:
            try:
                await self.sio.connect(
                    self.url, auth={"token": self.token}, transports=["websocket"], wait=True
                )
                return
            except Exception as exc:  # socketio.exceptions.ConnectionError and OS errors
                delay = backoff(attempt, 0.2)
                log.debug("socket connect failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        """Send an event; dropped while disconnected (joins are re-sent on reconnect).
        `sio.connected` is still False inside the connect handler, so it is not checked."""
        try:
            await self.sio.emit(event, data)
        except socketio.exceptions.BadNamespaceError:
            log.debug("socket down; %s not sent", event)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self.sio.disconnect()
        await self._http.close()
