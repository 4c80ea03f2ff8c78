"""A reverse proxy (HTTP and WebSocket) between an SDK worker and a live server that answers
500 to the first request matching a rule: a real 500 on the wire, no mocks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from tests.live import free_port

# Hop-by-hop or re-computed headers: never copied across the proxy.
DROPPED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-encoding", "upgrade"}
)
Rule = Callable[[str, str, bytes], bool]  # (method, path, body) -> answer 500?


class FaultyProxy:
    """Forwards everything to `upstream`; the first request matching `rule` is answered
    500. With `apply_first`, that request is forwarded first (the server applied it and
    only the answer is lost); else it never reaches the server."""

    def __init__(self, upstream: str, rule: Rule, *, apply_first: bool) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule = rule
        self.apply_first = apply_first
        self.tripped = 0
        self.url = ""
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        body = await request.read()
        fail = not self.tripped and self.rule(request.method, request.path, body)
        if fail:
            self.tripped += 1
            if not self.apply_first:
                return web.Response(status=500, text="injected by the test proxy")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in DROPPED}
        if fail:
            return web.Response(status=500, text="injected by the test proxy (applied)")
        return web.Response(status=upstream.status, body=payload, headers=kept)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        assert self._session is not None
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        target = "ws" + self.upstream.removeprefix("http") + request.path_qs
        async with self._session.ws_connect(target) as upstream:
            pumps = [
                asyncio.create_task(_pump(downstream, upstream)),
                asyncio.create_task(_pump(upstream, downstream)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        await downstream.close()
        return downstream


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        else:
            return


@contextlib.asynccontextmanager
async def faulty_proxy(
    upstream: str, rule: Rule, *, apply_first: bool
) -> AsyncIterator[FaultyProxy]:
    proxy = FaultyProxy(upstream, rule, apply_first=apply_first)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
