"""A TCP proxy for fault tests: forwards 127.0.0.1:<port> to a target and can fake network
failures on demand.

* `freeze()`: nothing is forwarded in either direction and nothing is closed, so both ends
  see a silent network death (a pulled cable, a host that vanished). New connections are
  accepted and held. The proxy's own kernel still ACKs what it receives, so a peer's TCP
  keepalives see a live connection: only timeouts above TCP notice the freeze.
* `cut()`: every connection is closed and new ones are refused (a crashed middlebox, a
  dead port).
* `resume()`: forward again; after a freeze, held data flows on; after a cut, the same
  port accepts again.

In a test (the proxy runs on its own thread, so it works from sync and async tests alike
and keeps forwarding while the test blocks):

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.freeze()

As a subprocess: `python -m tests.tcp_proxy HOST:PORT [--port N]` prints its port on the
first line, then obeys `freeze`, `cut` and `resume` read from stdin, one a line; EOF on
stdin stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Self

LISTEN_HOST = "127.0.0.1"
CHUNK = 65536
CONTROL_TIMEOUT = 10.0


class TcpProxy:
    """Forwards LISTEN_HOST:`port` (0 = a free port, chosen at start) to target_host:target_port."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._listener: socket.socket | None = None
        self._flowing = asyncio.Event()
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # --- the API ---------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        """Closes every connection and stops the proxy's thread."""
        if not self._thread.is_alive():
            return
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT)
        self._loop.close()

    def freeze(self) -> None:
        """Stop forwarding both ways; keep every socket open."""
        self._call(self._freeze())

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self._call(self._cut())

    def resume(self) -> None:
        """Forward again (after a cut: accept again on the same port)."""
        self._call(self._resume())

    @property
    def connections(self) -> int:
        """Client connections currently open through the proxy."""
        return len(self._links)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- on the proxy's loop ---------------------------------------------------
    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CONTROL_TIMEOUT)

    async def _listen(self) -> None:
        # A plain accept callback rather than asyncio.Server or sock_accept: closing either
        # while a connection is being accepted leaks that socket, and its client would
        # never see the cut.
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LISTEN_HOST, self.port))
        listener.listen()
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._flowing.set()
        asyncio.get_running_loop().add_reader(listener, self._accept, listener)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                return
            self._start_link(client)

    def _start_link(self, client: socket.socket) -> None:
        link = asyncio.create_task(self._link(client))
        self._links.add(link)

        def finished(_: asyncio.Task[None]) -> None:
            self._links.discard(link)
            client.close()  # a link cancelled before it ever ran would leak it

        link.add_done_callback(finished)

    async def _freeze(self) -> None:
        self._flowing.clear()

    async def _resume(self) -> None:
        if self._listener is None:
            await self._listen()
        self._flowing.set()

    async def _cut(self) -> None:
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener)
            self._listener.close()
            self._listener = None
        for writer in list(self._writers):
            writer.transport.abort()
        links = list(self._links)
        for link in links:
            link.cancel()
        await asyncio.gather(*links, return_exceptions=True)

    async def _link(self, client: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=client)
        self._writers.add(writer)
        try:
            await self._flowing.wait()  # a frozen network: the client waits, as on a SYN
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            self._writers.add(up_writer)
            try:
                pumps = [
                    asyncio.create_task(self._pump(reader, up_writer)),
                    asyncio.create_task(self._pump(up_reader, writer)),
                ]
                try:
                    # Either side closing ends the link: neither protocol we proxy half-closes.
                    await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for pump in pumps:
                        pump.cancel()
                    await asyncio.gather(*pumps, return_exceptions=True)
            finally:
                self._close(up_writer)
        finally:
            self._close(writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                data = await reader.read(CHUNK)
            except OSError:  # a reset counts as a close
                data = b""
            # Frozen: hold what was read, and hold a close too (a silent death shows
            # neither data nor a close to the other side).
            await self._flowing.wait()
            if not data:
                return
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return

    def _close(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="HOST:PORT to forward to")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 = free)")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    commands = {"freeze": TcpProxy.freeze, "cut": TcpProxy.cut, "resume": TcpProxy.resume}
    with TcpProxy(host, int(port), args.port) as proxy:
        print(proxy.port, flush=True)
        for line in sys.stdin:
            command = commands.get(line.strip())
            if command is None:
                print(f"unknown command {line.strip()!r}", file=sys.stderr)
                continue
            command(proxy)
            print("ok", flush=True)


if __name__ == "__main__":
    main()
