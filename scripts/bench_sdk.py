"""SDK benchmark: tasks/s of no-op jobs drained by W SDK worker processes.

Each worker is its own `python -m jobserver_sdk worker` process (as deployed); the jobs
are submitted through the bulk endpoint once every worker has registered, and the clock
runs from the first submit until the room's stats count every task completed. Compare
with the raw HTTP figure of ../shared/bench/joblib_bench.py --scenario drain.

    uv run python scripts/bench_sdk.py --url http://127.0.0.1:8000 --token "$TOKEN" \
        --tasks 2000 --workers 1 4 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

from jobserver_sdk import Job, JobService

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.25  # the stats query costs the server too: poll gently


class Noop(Job):
    """Does nothing: what is left is the SDK's and the server's cost per task."""

    i: int = 0

    async def handle(self) -> None:
        return None


async def workers_ready(service: JobService, count: int) -> None:
    path = f"/v1/joblib/rooms/{service.room}/jobs/{Noop.full_name(service.room)}"
    while True:
        try:
            job = await service.client.request("GET", path)
            if len(job["workers"]) >= count:
                return
        except Exception:  # not registered yet
            pass
        await asyncio.sleep(POLL_SECONDS)


async def completed(service: JobService) -> int:
    stats = await service.client.request("GET", f"/v1/joblib/rooms/{service.room}/stats")
    return sum(job["counts"].get("completed", 0) for job in stats["jobs"])


async def one_round(args: argparse.Namespace, count: int) -> float:
    room = f"sdkbench{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "jobserver_sdk", "worker", "scripts.bench_sdk:Noop"]
    command += ["--url", args.url, "--token", args.token, "--room", room]
    command += ["--concurrency", str(args.concurrency), "--log-level", "WARNING"]
    procs = [await asyncio.create_subprocess_exec(*command, cwd=ROOT) for _ in range(count)]
    try:
        async with JobService(args.url, args.token, room=room) as service:
            await workers_ready(service, count)
            start = time.perf_counter()
            await service.submit_many([Noop(i=i) for i in range(args.tasks)])
            submitted = time.perf_counter() - start
            while True:
                if await completed(service) >= args.tasks:
                    break
                await asyncio.sleep(POLL_SECONDS)
            elapsed = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.terminate()
        await asyncio.gather(*(proc.wait() for proc in procs))
    rate = args.tasks / elapsed
    sys.stdout.write(
        f"sdk drain: {count} worker(s) x concurrency {args.concurrency}: {args.tasks} tasks "
        f"in {elapsed:.2f} s = {rate:.0f} tasks/s (bulk submit {submitted:.2f} s)\n"
    )
    return rate


async def main_async(args: argparse.Namespace) -> None:
    for count in args.workers:
        await one_round(args, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("JOBSERVER_TOKEN"))
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not args.token:
        raise SystemExit("--token (or JOBSERVER_TOKEN) is required")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
