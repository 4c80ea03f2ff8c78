"""Processes the background tests start: `jobserver worker` in a session of its own, and
how to stop one with its taskiq children."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.live import free_port

__all__ = ["free_port", "port_open", "start_worker", "stop"]

ROOT = Path(__file__).resolve().parents[2]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process's whole group: taskiq's children too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_worker(env: dict[str, str], log: IO[bytes], concurrency: str) -> subprocess.Popen[bytes]:
    """`jobserver worker` in a session of its own, so its taskiq children die with it."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--concurrency", concurrency],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
