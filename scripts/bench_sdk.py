"""SDK benchmark: one `Worker` process against a running server, no-op jobs.

`throughput` (default): `--tasks` tasks from `submit_many`, drained by one worker process
(`python -m jobserver_sdk worker`, as deployed); the figure is tasks / (last task's
`completed_at` - first task's `created_at`), both read from the database's clock, so the
polling that waits for the end adds no error. `latency`: submit one task at a time to a
waiting worker; the handler returns the wall-clock time it started, and submit -> handler
start is reported as p50/p99.

    uv run jobserver serve  # with JOBSERVER_DATABASE_URL / JOBSERVER_REDIS_URL set
    export JOBSERVER_TOKEN=$(uv run jobserver token admin@example.com)
    uv run python scripts/bench_sdk.py --tasks 5000 --concurrency 64
    uv run python scripts/bench_sdk.py --mode latency --samples 300
    # the server's CPU per task too (a process on this machine; Linux /proc)
    uv run python scripts/bench_sdk.py --tasks 5000 --server-pid "$SERVER_PID"  # the serve PID
    # where the worker's time goes: --py-spy worker.txt (collapsed stacks; needs py-spy)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from jobserver_sdk import Job, JobService

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.2  # the stats query costs the server too: poll gently
PAGE = 500


class Noop(Job):
    """Does nothing: what is left is the SDK's and the server's cost per task."""

    i: int = 0

    async def handle(self) -> None:
        return None


class Stamp(Job):
    """Returns the wall-clock time its handler started (latency mode)."""

    async def handle(self) -> float:
        return time.time()


def worker_command(args: argparse.Namespace, room: str, job: str) -> list[str]:
    command = [sys.executable, "-m", "jobserver_sdk", "worker", f"scripts.bench_sdk:{job}"]
    command += ["--url", args.url, "--token", args.token, "--room", room]
    command += ["--concurrency", str(args.concurrency), "--log-level", "WARNING"]
    if args.py_spy:
        sampler = ["py-spy", "record", "--format", "raw", "--rate", "250", "-o", args.py_spy]
        command = [*sampler, "--", *command]
    return command


async def worker_ready(service: JobService, job: type[Job]) -> None:
    path = f"/v1/joblib/rooms/{service.room}/jobs/{job.full_name(service.room)}"
    while True:
        try:
            if (await service.client.request("GET", path))["workers"]:
                return
        except Exception:  # not registered yet
            pass
        await asyncio.sleep(POLL_SECONDS)


async def completed(service: JobService) -> int:
    stats = await service.client.request("GET", f"/v1/joblib/rooms/{service.room}/stats")
    return sum(job["counts"].get("completed", 0) for job in stats["jobs"])


async def room_tasks(service: JobService) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        path = f"/v1/joblib/rooms/{service.room}/tasks?limit={PAGE}&offset={len(found)}"
        page = await service.client.request("GET", path)
        found.extend(page["items"])
        if len(found) >= page["total"] or not page["items"]:
            return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def with_worker(
    args: argparse.Namespace, job: type[Job], body: Any
) -> tuple[Any, float | None]:
    """Run `body(service)` with one worker process serving `job` in a fresh room; also
    the CPU seconds the worker spent meanwhile (None under py-spy or off Linux)."""
    room = f"sdkbench{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = worker_command(args, room, job.__name__)
    proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env)
    try:
        async with JobService(args.url, args.token, room=room) as service:
            await worker_ready(service, job)
            await asyncio.sleep(0.5)  # the socket joins right after registration
            before = None if args.py_spy else cpu_seconds(proc.pid)
            result = await body(service)
            after = None if args.py_spy else cpu_seconds(proc.pid)
            spent = None if before is None or after is None else after - before
            return result, spent
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes its profile, the worker stops
        await proc.wait()


async def throughput(args: argparse.Namespace) -> None:
    async def drain(service: JobService) -> tuple[float, float]:
        start = time.perf_counter()
        await service.submit_many([Noop(i=i) for i in range(args.tasks)])
        submitted = time.perf_counter() - start
        while True:
            if await completed(service) >= args.tasks:
                break
            await asyncio.sleep(POLL_SECONDS)
        tasks = await room_tasks(service)
        first = min(datetime.fromisoformat(t["created_at"]) for t in tasks)
        last = max(datetime.fromisoformat(t["completed_at"]) for t in tasks)
        return (last - first).total_seconds(), submitted

    server_before = cpu_seconds(args.server_pid) if args.server_pid else None
    (elapsed, submitted), cpu = await with_worker(args, Noop, drain)
    server_after = cpu_seconds(args.server_pid) if args.server_pid else None
    sys.stdout.write(
        f"sdk throughput: 1 worker x concurrency {args.concurrency}: {args.tasks} tasks in "
        f"{elapsed:.2f} s = {args.tasks / elapsed:.0f} completed tasks/s "
        f"(bulk submit took {submitted:.2f} s of it)\n"
    )
    if cpu is not None:
        per_task = cpu / args.tasks * 1e6
        sys.stdout.write(
            f"worker process CPU: {cpu:.2f} s = {per_task:.0f} us per task "
            f"(one core's worth of worker: ~{1e6 / per_task:.0f} tasks/s)\n"
        )
    if server_before is not None and server_after is not None:
        # Includes the worker's start and registration and the end's polling: an upper bound.
        per_task = (server_after - server_before) / args.tasks * 1e6
        sys.stdout.write(
            f"server process CPU: {server_after - server_before:.2f} s = {per_task:.0f} us per "
            f"task (one core's worth of server: ~{1e6 / per_task:.0f} tasks/s)\n"
        )


async def latency(args: argparse.Namespace) -> None:
    async def measure(service: JobService) -> tuple[list[float], list[float]]:
        samples: list[float] = []
        submits: list[float] = []
        for _ in range(args.samples):
            sent = time.time()
            task = await service.submit(Stamp())
            submits.append((time.time() - sent) * 1000)
            started = await task.result(timeout=30)
            samples.append((started - sent) * 1000)
            await asyncio.sleep(0.02)  # the worker is idle and waiting again
        return samples, submits

    (measured, submits), _ = await with_worker(args, Stamp, measure)
    samples = sorted(measured)
    sys.stdout.write(
        f"sdk latency: submit -> handler start over {len(samples)} tasks: "
        f"p50 {percentile(samples, 50):.1f} ms, p99 {percentile(samples, 99):.1f} ms, "
        f"max {samples[-1]:.1f} ms\n"
        f"  of which the submit request (until its answer): p50 "
        f"{percentile(sorted(submits), 50):.1f} ms, p99 {percentile(sorted(submits), 99):.1f} ms\n"
    )


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ordered list."""
    if q == 50:
        return statistics.median(ordered)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("JOBSERVER_TOKEN"))
    parser.add_argument("--mode", choices=["throughput", "latency"], default="throughput")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--py-spy", help="profile the worker into this file (raw stacks)")
    parser.add_argument("--server-pid", type=int, help="also report this server process's CPU")
    args = parser.parse_args()
    if not args.token:
        raise SystemExit("--token (or JOBSERVER_TOKEN) is required")
    asyncio.run(throughput(args) if args.mode == "throughput" else latency(args))


if __name__ == "__main__":
    main()
