"""Stop benchmark: SIGTERM a `jobserver serve` while an SDK worker runs tasks and a
long-poll is open, restart it, and count what survived.

Prints the seconds from SIGTERM to exit, how each task ended and how often each handler
ran. `--source` runs the server from another checkout (e.g. an older commit, unpacked
with `git archive`) with this environment, to compare.

    uv run python scripts/bench_stop.py --tasks 4 --sleep 6 --wait 50
    uv run python scripts/bench_stop.py --workers 2   # `jobserver serve --workers 2`
    uv run python scripts/bench_stop.py --database-url postgresql+asyncpg://... \
        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from jobserver_sdk import Job, JobService, Task, TaskNotCompleted, Worker

ROOT = Path(__file__).resolve().parent.parent
EMAIL, PASSWORD = "bench@example.com", "bench-password"
RUNS: collections.Counter[int] = collections.Counter()


class Nap(Job):
    """Sleeps, counting its runs in this process."""

    n: int
    seconds: float

    async def handle(self) -> int:
        RUNS[self.n] += 1
        await asyncio.sleep(self.seconds)
        return self.n


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: argparse.Namespace, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    command += ["--workers", str(args.workers)]
    with open(args.log or os.devnull, "ab") as log:
        process = subprocess.Popen(command, env=env, cwd=args.source, stderr=log)
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start")


def long_poll(url: str, token: str, task_id: uuid.UUID, wait: int) -> int:
    response = httpx.get(
        f"{url}/v1/joblib/tasks/{task_id}",
        headers={"Authorization": f"Bearer {token}", "Prefer": f"wait={wait}"},
        timeout=wait + 30,
    )
    return response.status_code


def stop(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait()
    return time.monotonic() - started


async def outcome(task: Task) -> str:
    try:
        await task.result(timeout=120)
    except TaskNotCompleted as failed:
        return f"failed: {failed.info.error}"
    return "completed"


async def run(args: argparse.Namespace, data_dir: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_")}
    env |= {
        "JOBSERVER_DATA_DIR": data_dir,
        "JOBSERVER_DEFAULT_ADMIN_EMAIL": EMAIL,
        "JOBSERVER_DEFAULT_ADMIN_PASSWORD": PASSWORD,
        "JOBSERVER_LOG_LEVEL": "info" if args.log else "warning",
        "JOBSERVER_SECRET_KEY": uuid.uuid4().hex * 2,  # PostgreSQL needs one set
    }
    if args.database_url:
        env["JOBSERVER_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["JOBSERVER_REDIS_URL"] = args.redis_url
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(args, env, port)
    login = {"username": EMAIL, "password": PASSWORD}
    answer = await asyncio.to_thread(httpx.post, f"{url}/v1/auth/jwt/login", data=login)
    token = answer.json()["access_token"]
    room = f"stopbench{uuid.uuid4().hex[:8]}"
    worker = Worker(url, token, [Nap], room, concurrency=args.tasks, handle_signals=False)
    running = asyncio.create_task(worker.run())
    try:
        await worker.ready.wait()
        async with JobService(url, token, room=room) as service:
            tasks = [await service.submit(Nap(n=n, seconds=args.sleep)) for n in range(args.tasks)]
            while True:
                if len(RUNS) == args.tasks:  # every handler is running
                    break
                await asyncio.sleep(0.05)
            poll = asyncio.create_task(
                asyncio.to_thread(long_poll, url, token, tasks[0].id, args.wait)
            )
            await asyncio.sleep(0.5)
            took = await asyncio.to_thread(stop, server)
            say(f"SIGTERM -> exit: {took:.2f} s; open long-poll answered {await poll}")
            server = await asyncio.to_thread(start, args, env, port)
            ends = await asyncio.gather(*(outcome(task) for task in tasks))
        say(f"tasks: {dict(collections.Counter(ends))}")
        say(f"handler runs per task: {[RUNS[n] for n in range(args.tasks)]}")
    finally:
        worker.stop()
        await running
        server.send_signal(signal.SIGTERM)
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=6.0, help="seconds each handler sleeps")
    parser.add_argument("--wait", type=int, default=50, help="Prefer: wait of the long-poll")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to serve from")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--redis-url", help="default: none (embedded mode)")
    parser.add_argument("--log", help="append the server's log (level info) to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stop-") as data_dir:
        asyncio.run(run(args, data_dir))


if __name__ == "__main__":
    main()
