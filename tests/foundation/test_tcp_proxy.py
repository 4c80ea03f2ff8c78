"""The fault-test TCP proxy (tests/tcp_proxy.py): forwards, freezes silently, cuts, resumes."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
QUIET = 0.5  # how long "nothing arrives" is watched for


class Echo(socketserver.BaseRequestHandler):
    """Echoes until the client closes, then records that it saw the close."""

    closed: threading.Event

    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)
        self.server.closed.set()  # type: ignore[attr-defined]


@pytest.fixture
def echo() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    server.closed = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: socketserver.ThreadingTCPServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", echo.server_address[1]) as running:
        yield running


def connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.settimeout(5)
    return sock


def nothing_arrives(sock: socket.socket) -> bool:
    sock.settimeout(QUIET)
    try:
        sock.recv(4096)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_proxy_forwards_both_ways(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4096) == b"ping"
        assert proxy.connections == 1


def test_frozen_proxy_forwards_nothing_and_closes_nothing(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"one")
        assert sock.recv(4096) == b"one"
        proxy.freeze()
        sock.sendall(b"two")
        assert nothing_arrives(sock)
        proxy.resume()
        assert sock.recv(4096) == b"two"


def test_frozen_proxy_hides_a_close_until_resumed(
    proxy: TcpProxy, echo: socketserver.ThreadingTCPServer
) -> None:
    sock = connect(proxy)
    sock.sendall(b"x")
    assert sock.recv(4096) == b"x"
    proxy.freeze()
    sock.close()
    assert not echo.closed.wait(QUIET)  # type: ignore[attr-defined]
    proxy.resume()
    assert echo.closed.wait(5)  # type: ignore[attr-defined]


def test_frozen_proxy_holds_new_connections_until_resumed(proxy: TcpProxy) -> None:
    proxy.freeze()
    with connect(proxy) as sock:
        sock.sendall(b"held")
        assert nothing_arrives(sock)
        proxy.resume()
        assert sock.recv(4096) == b"held"


def test_cut_closes_connections_and_refuses_new_ones_until_resumed(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        proxy.cut()
        with contextlib.suppress(ConnectionResetError):  # a reset is a close too
            assert sock.recv(4096) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.resume()
    with connect(proxy) as sock:
        sock.sendall(b"back")
        assert sock.recv(4096) == b"back"


def test_proxy_runs_as_a_subprocess(echo: socketserver.ThreadingTCPServer) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tcp_proxy", f"127.0.0.1:{echo.server_address[1]}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        port = int(process.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            sock.sendall(b"a")
            assert sock.recv(4096) == b"a"
            process.stdin.write("freeze\n")
            process.stdin.flush()
            assert process.stdout.readline() == "ok\n"
            sock.sendall(b"b")
            assert nothing_arrives(sock)
            process.stdin.write("resume\n")
            process.stdin.flush()
            assert process.stdout.readline() == "ok\n"
            assert sock.recv(4096) == b"b"
        process.stdin.close()
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
