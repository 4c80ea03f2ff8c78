"""A real `jobserver serve` subprocess for end-to-end tests, and the small ApiManager the
zndraw-joblib client needs to talk to it."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, TEST_SECRET, WORKER_INDEX

# Generous: on a loaded 2-core box, `--workers 2` imports the app in two fresh processes.
STARTUP_TIMEOUT = 60.0


# Ports for test servers: each pytest-xdist worker draws from a block of its own, below
# Linux's ephemeral range (32768-60999, where the kernel picks "any free port" and the
# ports of outgoing connections). A port found free is only bound later, by a server
# process; from a shared pool another worker could find the same port free meanwhile.
PORT_BLOCK_START = 20000
PORT_BLOCK_SIZE = 1000
_port_block = PORT_BLOCK_START + WORKER_INDEX * PORT_BLOCK_SIZE
# A random start: concurrent runs (other checkouts) seldom walk the same ports together.
_port_offsets = itertools.count(random.randrange(PORT_BLOCK_SIZE))


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's block; never the same twice
    in a row."""
    for _ in range(PORT_BLOCK_SIZE):
        port = _port_block + next(_port_offsets) % PORT_BLOCK_SIZE
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_port_block}-{_port_block + PORT_BLOCK_SIZE - 1}")


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def token(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
        response = httpx.post(
            f"{self.url}/v1/auth/jwt/login", data={"username": email, "password": password}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def register_user(self, email: str, password: str = "long-enough-password") -> str:
        """A fresh operator account (self-registration); returns its token."""
        response = httpx.post(
            f"{self.url}/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return self.token(email, password)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_")}
    env.update(
        JOBSERVER_DATABASE_URL=database_url,
        JOBSERVER_DATA_DIR=str(data_dir),
        JOBSERVER_SECRET_KEY=TEST_SECRET,
        JOBSERVER_DEFAULT_ADMIN_EMAIL=ADMIN_EMAIL,
        JOBSERVER_DEFAULT_ADMIN_PASSWORD=ADMIN_PASSWORD,
        JOBSERVER_LOG_LEVEL="warning",
        # Off by default; the live tests register their users over REST.
        JOBSERVER_ALLOW_REGISTRATION="true",
    )
    env.update(extra)
    return env


def start_server(
    env: dict[str, str], log_path: Path, port: int | None = None, args: Sequence[str] = ()
) -> LiveServer:
    """Start `jobserver serve` (plus `args`) and wait until /health answers."""
    port = port or free_port()
    # The child keeps its own copy of the descriptor; ours must close (ResourceWarning).
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path, env)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"server did not start:\n{server.log()}")


@contextlib.contextmanager
def live_server(
    database_url: str,
    data_dir: Path,
    port: int | None = None,
    args: Sequence[str] = (),
    **extra: str,
) -> Iterator[LiveServer]:
    server = start_server(
        server_env(database_url, data_dir, **extra), data_dir / "server.log", port, args
    )
    try:
        yield server
    finally:
        server.kill()


class ApiManager:
    """What zndraw-joblib's JobManager expects from its host (CLIENT.md, Plumbing)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(timeout=30)
        self._base_url = base_url
        self._token = token

    @property
    def base_url(self) -> str:
        return self._base_url

    def get_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        detail = response.text
        if response.status_code == 404:
            raise KeyError(detail)
        if response.status_code in (401, 403):
            raise PermissionError(detail)
        if response.status_code in (409, 422):
            raise ValueError(detail)
        response.raise_for_status()

    def close(self) -> None:
        self.http.close()
