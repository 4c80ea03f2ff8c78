"""The transport: HTTP (auth header, retries on transient errors), async and sync, and the
Socket.IO client.

Everything above this module speaks in paths and JSON; nothing here knows about jobs.
"""

from __future__ import annotations

import asyncio
import io
import json as json_module
import logging
import os
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import socketio

from jobserver_sdk.errors import (
    ApiError,
    Forbidden,
    ServerUnavailable,
    ServerUnreachable,
    TokenRejected,
)

log = logging.getLogger("jobserver_sdk")

TRANSIENT_STATUS = frozenset({502, 503, 504})
SERVER_ERROR = 500
MAX_CONNECTIONS = 200
LARGE_BODY = 64 * 1024
# Timed out while connecting (or waiting for a pooled connection): never sent.
CONNECT_TIMEOUT = aiohttp.ConnectionTimeoutError
DEFAULT_RETRY_SECONDS = 30.0
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
# Until a server has answered once, a connection error is retried only this long: a wrong
# URL or a server that is not up fails fast. After that the full `retry_seconds` applies,
# so a running worker rides out a restart.
CONNECT_SECONDS = 5.0
SCHEMES = ("http", "https")


def check_url(url: str) -> str:
    """The server URL without a trailing slash; ValueError naming it when it has no
    http(s) scheme or no host.

    Example:
        >>> check_url("http://127.0.0.1:8000/")
        'http://127.0.0.1:8000'
        >>> check_url("127.0.0.1:8000")
        Traceback (most recent call last):
        ...
        ValueError: jobserver URL '127.0.0.1:8000' needs a scheme and a host, e.g. http://127.0.0.1:8000
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError as exc:
        raise ValueError(f"jobserver URL {url!r} is malformed: {exc}") from None
    example = "e.g. http://127.0.0.1:8000"
    if not parts.scheme or not parts.hostname or "://" not in url:
        raise ValueError(f"jobserver URL {url!r} needs a scheme and a host, {example}")
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"jobserver URL {url!r} has the scheme {parts.scheme!r}; use http or https, {example}"
        )
    return url.rstrip("/")


def connect_cause(exc: BaseException, url: str) -> str:
    """Why a connection failed, in words: the OS's reason rather than the library's."""
    os_error = getattr(exc, "os_error", None) or exc.__cause__ or exc.__context__
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(os_error, OSError):
        errno = os_error.errno
        cause = os.strerror(errno) if errno is not None and errno > 0 else str(os_error.strerror)
    elif isinstance(exc, TimeoutError | httpx.TimeoutException | CONNECT_TIMEOUT):
        cause = "no answer (timed out)"
    else:
        cause = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
    if urlsplit(url).port is None:
        default = 443 if url.startswith("https") else 80
        cause += f" (the URL names no port, so {default} was tried; jobserver's default is 8000)"
    return cause


class Link:
    """What the SDK knows of one server's reachability, shared by every client of one
    worker (its event-loop client and its heartbeat thread's): whether it has answered
    yet, since when it has not, and who to tell when it refuses the token. A lost
    connection and its recovery are logged once each, not once per retry.

    Example:
        >>> link = Link("http://127.0.0.1:8000")
        >>> link.answered()
        >>> link.reached
        True
    """

    def __init__(
        self,
        url: str,
        logger: logging.Logger | None = None,
        connect_seconds: float = CONNECT_SECONDS,
    ) -> None:
        self.url = url
        self.connect_seconds = connect_seconds
        self.reached = False
        self.log = logger or log
        # Called (from any thread) with the TokenRejected a request got.
        self.on_token_rejected: Callable[[TokenRejected], None] = lambda _exc: None
        self._lost_at: float | None = None
        self._back_at = 0.0
        self._lock = threading.Lock()

    def answered(self) -> None:
        with self._lock:
            self.reached = True
            lost_at, self._lost_at = self._lost_at, None
            if lost_at is not None:
                self._back_at = time.monotonic()
        if lost_at is not None:
            self.log.info(
                "connection to %s is back after %.1f s", self.url, time.monotonic() - lost_at
            )

    def failed(self, cause: str, sent_at: float) -> None:
        """A request sent at `sent_at` (time.monotonic) got no answer. One sent before the
        last recovery is a straggler of the loss already told, not a new one."""
        with self._lock:
            first = self.reached and self._lost_at is None and sent_at >= self._back_at
            if first:
                self._lost_at = time.monotonic()
        if first:
            self.log.warning("lost the connection to %s (%s); retrying", self.url, cause)

    def token_rejected(self, exc: TokenRejected) -> None:
        self.on_token_rejected(exc)

    def budget(self, retry_seconds: float) -> float:
        """How long connection errors are retried: short until the server first answered."""
        return retry_seconds if self.reached else min(retry_seconds, self.connect_seconds)


def backoff(attempt: int, start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff with jitter: attempt 0 waits about `start`, never over `cap`."""
    return float(min(cap, start * 2**attempt) * random.uniform(0.5, 1.0))


class Client:
    """One server: an aiohttp session with the bearer token (made on first use, in the
    running loop), and a Socket.IO client on demand. aiohttp rather than httpx here: a
    request costs about a quarter of httpx's time, and a task takes three of them.

    Requests are retried on connection errors and on 502/503/504 for up to
    `retry_seconds`. Only errors where the request cannot have been applied are retried
    for non-idempotent calls (`safe=False`): connection refused, or a 503 answer. A
    `fenced` request (one the server applies at most once, e.g. a fenced status report)
    is retried on every 5xx and every connection error.

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
        link: Link | None = None,
    ) -> None:
        self.url = check_url(url)
        self.token = token
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.link = link or Link(self.url)
        self._session: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """The session, made on first use (aiohttp wants a running loop for that)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=CONNECT_SECONDS),
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            )
        return self._session

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
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        http_timeout: float | None = None,
        safe: bool = True,
        fenced: bool = False,
        retry_seconds: float | None = None,
    ) -> Any:
        """Send one request and return its JSON body (None for 204); ApiError on 4xx/5xx."""
        budget = self.retry_seconds if retry_seconds is None else retry_seconds
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + budget
        attempt = 0
        while True:
            delay = backoff(attempt)
            sent_at = time.monotonic()
            try:
                status, content = await self._send(method, path, json, headers, http_timeout)
                self.link.answered()
                reason = _retry_reason(status, safe, fenced)
                if reason is None:
                    return _body(status, content, self.link)
            except (aiohttp.ClientError, TimeoutError) as exc:
                never_sent = isinstance(exc, aiohttp.ClientConnectorError | CONNECT_TIMEOUT)
                cause = connect_cause(exc, self.url)
                self.link.failed(cause, sent_at)
                _transport_reason(exc, method, path, never_sent or safe or fenced, self.url)
                reason = cause
                if loop.time() + delay > started + self.link.budget(budget):
                    raise ServerUnreachable(self.url, cause) from exc
            if loop.time() + delay > deadline:
                raise ServerUnavailable(f"{method} {path} on {self.url}: {reason}")
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
    ) -> tuple[int, bytes]:
        extra: dict[str, Any] = {}
        if http_timeout is not None:
            extra["timeout"] = aiohttp.ClientTimeout(total=http_timeout)
        if json is not None:
            body = json_module.dumps(json).encode()
            # aiohttp warns about (and would block the loop on) a large bytes body.
            extra["data"] = io.BytesIO(body) if len(body) > LARGE_BODY else body
            headers = {**(headers or {}), "Content-Type": "application/json"}
        async with self.http.request(method, self.url + path, headers=headers, **extra) as response:
            return response.status, await response.read()

    def socket(self) -> Socket:
        """A Socket.IO connection to this server, authenticated with the same token."""
        return Socket(self.url, self.token)


class SyncClient:
    """A blocking twin of `Client` for threads that must not depend on the event loop (the
    worker's heartbeats): same auth, same retry rules, its own connections.

    Example:
        >>> with SyncClient("http://127.0.0.1:8000", token) as client:
        ...     client.request("PATCH", f"/v1/joblib/workers/{worker_id}")
    """

    def __init__(
        self, url: str, token: str, *, timeout: float = 30.0, link: Link | None = None
    ) -> None:
        self.url = check_url(url)
        self.link = link or Link(self.url)
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=CONNECT_SECONDS),
        )

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        safe: bool = True,
        fenced: bool = False,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> Any:
        """As `Client.request`, blocking the calling thread."""
        started = time.monotonic()
        deadline = started + retry_seconds
        attempt = 0
        while True:
            delay = backoff(attempt)
            sent_at = time.monotonic()
            try:
                response = self.http.request(method, path, json=json)
                self.link.answered()
                reason = _retry_reason(response.status_code, safe, fenced)
                if reason is None:
                    return _body(response.status_code, response.content, self.link)
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                cause = connect_cause(exc, self.url)
                self.link.failed(cause, sent_at)
                _transport_reason(exc, method, path, never_sent or safe or fenced, self.url)
                reason = cause
                if time.monotonic() + delay > started + self.link.budget(retry_seconds):
                    raise ServerUnreachable(self.url, cause) from exc
            if time.monotonic() + delay > deadline:
                raise ServerUnavailable(f"{method} {path} on {self.url}: {reason}")
            log.debug("%s %s: %s; retrying in %.2f s", method, path, reason, delay)
            time.sleep(delay)
            attempt += 1


def _retry_reason(status: int, safe: bool, fenced: bool) -> str | None:
    """Why this answer is worth another try, or None to hand it to the caller. A 503 was
    not applied; a 502/504 may have been, so only idempotent calls retry those; a 500 may
    have been too, so only fenced calls (applied at most once) retry it."""
    if status == 503 or (fenced and status >= SERVER_ERROR):
        return f"HTTP {status}"
    if safe and status in TRANSIENT_STATUS:
        return f"HTTP {status}"
    return None


def _transport_reason(exc: Exception, method: str, path: str, repeatable: bool, url: str) -> None:
    """A connection error is retried; raised at once when the request may have been
    applied and is not safe to repeat (`repeatable` is also true when it never left: a
    connect error)."""
    if not repeatable:
        raise ServerUnavailable(f"{method} {path} on {url}: {exc!r}") from exc


def _body(status: int, content: bytes, link: Link) -> Any:
    if status < 400:
        return None if status == 204 or not content else json_module.loads(content)
    try:
        problem = json_module.loads(content)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    text = content[:500].decode(errors="replace")
    type_, detail = str(problem.get("type", "about:blank")), str(problem.get("detail", text))
    if status == 401:
        rejected = TokenRejected(link.url, type_, detail)
        link.token_rejected(rejected)
        raise rejected
    if status == 403:
        raise Forbidden(status, type_, detail)
    errors = problem.get("errors")
    raise ApiError(status, type_, detail, errors if isinstance(errors, list) else None)


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
            # Its own SIGINT handler would replace the Worker's (graceful stop) with
            # one that disconnects and cancels every task.
            handle_sigint=False,
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

    async def call(self, event: str, data: dict[str, Any], timeout: float) -> bool:  # noqa: ASYNC109 - python-socketio's own parameter
        """Send an event and wait until the server has handled it (its acknowledgement);
        False when disconnected or unanswered within `timeout`. Not from a connect handler:
        that would hold up the connect."""
        try:
            await self.sio.call(event, data, timeout=timeout)
        except (socketio.exceptions.BadNamespaceError, socketio.exceptions.TimeoutError):
            log.debug("socket down or slow; %s not acknowledged", event)
            return False
        return True

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self.sio.disconnect()
        await self._http.close()
